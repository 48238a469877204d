"""The invitation link in a real browser: the email lands in the outbox, its link opens the "set your password"
form, the person is signed in, and the link does not work a second time."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import time
from typing import Any

from playwright.async_api import expect

from chatserver.actions import messages, projects
from chatserver.schemas import PlatformProject, parse

_LINK = re.compile(r"/#invite=([A-Za-z0-9_-]+)")


async def invitation_token(server: Any) -> str:
    """Register a project naming a new client contact with an email address; the token from her email."""
    payload = {
        "external_id": "SMP-2026-0031",
        "name": "银企直连",
        "client_org": "华岳能源股份有限公司",
        "products": ["银企直连"],
        "people": [
            {"username": "am.wang", "name": "王晓明", "role": "account_manager"},
            {"username": "hy.qiao", "name": "乔一帆", "role": "client_contact", "email": "qiao@huayue.example"},
        ],
    }
    await projects.register_project(server.services, parse(PlatformProject, payload), delivery_id="web-test")
    outbox = server.data_dir / "outbox"
    deadline = time.monotonic() + 10
    while not list(outbox.glob("*.eml")):
        assert time.monotonic() < deadline, "no invitation email in the outbox"
        await asyncio.sleep(0.05)
    [eml] = outbox.glob("*.eml")
    message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    found = _LINK.search(body.get_content())
    assert found is not None
    return found.group(1)


async def test_an_invitation_link_sets_the_password_and_signs_in_once(open_user: Any, server: Any) -> None:
    token = await invitation_token(server)
    u = await open_user("hy.qiao", login=False)

    await u.page.goto(f"{server.url}/#invite={token}")
    await expect(u.tid("invite-form")).to_be_visible()
    await expect(u.tid("login-form")).to_be_hidden()
    assert "invite=" not in u.page.url  # the token leaves the address bar at once

    await u.tid("invite-password").fill("qiao-pass-2026")
    await u.tid("invite-confirm").fill("qiao-pass-2027")
    await u.tid("invite-submit").click()
    await expect(u.tid("invite-error")).to_have_text("两次输入的密码不一致")

    await u.tid("invite-confirm").fill("qiao-pass-2026")
    await u.tid("invite-submit").click()
    await expect(u.room("华岳能源")).to_be_visible()
    await expect(u.tid("current-user-name")).to_have_text("乔一帆")

    # A message that mentions her is marked as such; its text stays text.
    await u.open_room("华岳能源")
    wang = await server.services.store.get_user_by_username("am.wang")
    room_id = (await server.services.store.get_project_by_external_id("SMP-2026-0031")).room_id
    await messages.send_message(
        server.services, wang, room_id=room_id, text="@乔一帆 欢迎！<b>接口文档</b>已上传。", client_msg_id="c-hi"
    )
    mentioned = u.message("@乔一帆 欢迎！<b>接口文档</b>已上传。")
    await expect(mentioned.get_by_test_id("mention-badge")).to_have_text("提到了你")
    await expect(u.messages().filter(has_text="项目已登记").get_by_test_id("mention-badge")).to_have_count(0)

    # The same link again: refused, and the way to the login form is offered.
    await u.tid("logout-button").click()
    await u.page.goto(f"{server.url}/#invite={token}")
    await expect(u.tid("invite-form")).to_be_visible()  # the page has taken the token out of the address
    await u.page.reload()
    await expect(u.tid("invite-form")).to_be_hidden()  # reloaded without the token: the login form
    await u.page.goto(f"{server.url}/?again=1#invite={token}")
    await expect(u.tid("invite-form")).to_be_visible()
    await u.tid("invite-password").fill("another-pass-1")
    await u.tid("invite-confirm").fill("another-pass-1")
    await u.tid("invite-submit").click()
    await expect(u.tid("invite-error")).to_have_text("这个链接已经用过了，请直接用密码登录")
    await u.tid("invite-to-login").click()
    await expect(u.tid("login-form")).to_be_visible()
    await u.tid("login-username").fill("hy.qiao")
    await u.tid("login-password").fill("qiao-pass-2026")
    await u.tid("login-submit").click()
    await expect(u.room("华岳能源")).to_be_visible()
