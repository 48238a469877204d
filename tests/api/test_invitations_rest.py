"""Invitations: the platform's payload creates a person with an email address → an email with a one-time link
arrives at a real SMTP server → `POST /api/invitations/accept` sets the password and signs them in, once."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from typing import Any

import pytest

from chatserver.models import Invitation, utcnow
from tests.conftest import RunningServer, ServerFactory, login
from tests.platform.helpers import PROJECTS, SECRET, platform_post, project_payload, register, token_of
from tests.smtp import LocalSmtp, Received

from .helpers import http

PUBLIC = "https://chat.yunfan-bank.example"
ACCEPT = "/api/invitations/accept"
PASSWORD = "qiao-pass-2026"
_LINK = re.compile(r"https://chat\.yunfan-bank\.example/#invite=([A-Za-z0-9_-]+)")


@pytest.fixture
async def server(server_factory: ServerFactory, smtp_server: LocalSmtp) -> RunningServer:
    srv: RunningServer = await server_factory(
        platform_secret=SECRET,
        mail_smtp_host=smtp_server.host,
        mail_smtp_port=smtp_server.port,
        mail_smtp_security="none",
        public_url=PUBLIC,
    )
    return srv


def token_in(email: Received) -> str:
    text_link = _LINK.search(email.part("plain"))
    html_link = _LINK.search(email.part("html"))
    assert text_link is not None and html_link is not None
    assert text_link.group(1) == html_link.group(1)
    return text_link.group(1)


async def invited(server: RunningServer, smtp: LocalSmtp) -> str:
    """Register the sample project (it names the new client contact 乔一帆); the token from her email."""
    await register(server, project_payload())
    [email] = await smtp.wait_for(1)
    return token_in(email)


async def accept(server: RunningServer, token: str, password: str = PASSWORD) -> tuple[int, Any]:
    return await http(server, "POST", ACCEPT, json={"token": token, "password": password})


async def test_a_person_the_platform_creates_gets_an_invitation_email(
    server: RunningServer, smtp_server: LocalSmtp
) -> None:
    await register(server, project_payload())

    [email] = await smtp_server.wait_for(1)
    assert email.rcpt_tos == ["qiao@huayue-energy.example"]
    assert email.message["To"].addresses[0].display_name == "乔一帆"
    assert email.subject == "【云顾问】请设置你的密码，开始使用云顾问"
    assert "hy.qiao" in email.part("plain") and "华岳能源股份有限公司 · 银企直连" in email.part("plain")
    assert email.message["X-Auto-Response-Suppress"] == "All"
    token = token_in(email)
    assert len(token) >= 40
    # only the token's hash is kept
    qiao = await server.services.store.get_user_by_username("hy.qiao")
    assert qiao is not None
    stored = await server.services.store.get_invitation(hashlib.sha256(token.encode()).hexdigest())
    assert stored is not None and stored.user_id == qiao.id and stored.used_at is None
    assert timedelta(hours=71) < stored.expires_at - utcnow() <= timedelta(hours=72)


async def test_the_link_sets_the_password_signs_in_and_works_once(
    server: RunningServer, smtp_server: LocalSmtp
) -> None:
    token = await invited(server, smtp_server)

    status, body = await accept(server, token)
    assert status == 200, body
    assert body["user"]["username"] == "hy.qiao"
    status, me = await http(server, "GET", "/api/me", token=body["token"])
    assert status == 200 and me["user"]["name"] == "乔一帆"
    assert await login(server.url, "hy.qiao", PASSWORD)

    status, again = await accept(server, token, "another-password")
    assert (status, again["error"]["code"]) == (410, "invitation_used")
    assert await login(server.url, "hy.qiao", PASSWORD)  # unchanged
    actions = [e.action for e in await server.services.store.list_audit(limit=50)]
    assert "invitation_created" in actions and "invitation_accepted" in actions


async def test_an_expired_link_is_refused_and_changes_nothing(server: RunningServer, smtp_server: LocalSmtp) -> None:
    await invited(server, smtp_server)
    qiao = await server.services.store.get_user_by_username("hy.qiao")
    assert qiao is not None
    token = "an-old-link-0123456789-abcdefghijklmnopqrstuv"
    past = utcnow() - timedelta(hours=73)
    await server.services.store.create_invitation(
        Invitation(
            token_hash=hashlib.sha256(token.encode()).hexdigest(),
            user_id=qiao.id,
            created_at=past,
            expires_at=past + timedelta(hours=72),
        )
    )

    status, body = await accept(server, token)

    assert (status, body["error"]["code"]) == (410, "invitation_expired")
    assert await server.services.store.get_password_hash(qiao.id) is None


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"token": "no-such-link", "password": PASSWORD}, 400, "invitation_invalid"),
        ({"token": "", "password": PASSWORD}, 400, "invalid_payload"),
        ({"token": "x", "password": "short"}, 400, "invalid_payload"),
        ({"token": "x"}, 400, "invalid_payload"),
        ({"token": 123, "password": PASSWORD}, 400, "invalid_payload"),
    ],
)
async def test_bad_requests_are_refused(server: RunningServer, body: Any, status: int, code: str) -> None:
    got_status, answer = await http(server, "POST", ACCEPT, json=body)
    assert (got_status, answer["ok"], answer["error"]["code"]) == (status, False, code)


async def test_a_password_too_short_leaves_the_link_usable(server: RunningServer, smtp_server: LocalSmtp) -> None:
    token = await invited(server, smtp_server)

    status, body = await accept(server, token, "short")
    assert (status, body["error"]["code"]) == (400, "invalid_payload")

    status, body = await accept(server, token)
    assert status == 200, body


async def test_an_admin_sends_a_new_link_and_the_old_one_stops_working(
    server: RunningServer, smtp_server: LocalSmtp
) -> None:
    old = await invited(server, smtp_server)
    qiao = await server.services.store.get_user_by_username("hy.qiao")
    assert qiao is not None

    status, body = await http(
        server, "POST", f"/api/admin/users/{qiao.id}/invitation", token=await token_of(server, "admin")
    )
    assert status == 201, body
    [_, second] = await smtp_server.wait_for(2)
    new = token_in(second)

    status, answer = await accept(server, old)
    assert (status, answer["error"]["code"]) == (410, "invitation_expired")
    assert (await accept(server, new))[0] == 200

    status, answer = await http(
        server, "POST", f"/api/admin/users/{qiao.id}/invitation", token=await token_of(server, "am.wang")
    )
    assert (status, answer["error"]["code"]) == (403, "forbidden")


async def test_people_who_exist_or_have_no_email_get_no_invitation(
    server: RunningServer, smtp_server: LocalSmtp
) -> None:
    payload = project_payload(
        people=[
            {"username": "am.wang", "name": "王晓明", "role": "account_manager"},
            {"username": "hy.zhao", "name": "赵一鸣", "role": "client_contact"},
        ]
    )
    await register(server, payload)
    status, _ = await platform_post(server, PROJECTS, project_payload("SMP-2026-0099"))
    assert status == 201
    [email] = await smtp_server.wait_for(1)
    assert email.rcpt_tos == ["qiao@huayue-energy.example"]
    status, _ = await platform_post(server, PROJECTS, project_payload("SMP-2026-0100"))  # 乔一帆 exists now
    assert status == 201
    created = [e for e in await server.services.store.list_audit(limit=100) if e.action == "invitation_created"]
    assert len(created) == 1
