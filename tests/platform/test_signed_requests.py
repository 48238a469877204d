"""The service platform's signed requests: who gets in, replays and repeats, bad payloads, the people they create."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import RunningServer, ServerFactory, login
from tests.platform.helpers import (
    HUAYUE,
    PROJECTS,
    SECRET,
    People,
    platform_post,
    project_payload,
    register,
    rest,
    sign,
    token_of,
)

REPO = Path(__file__).resolve().parents[2]


async def snapshot(server: RunningServer) -> dict[str, object]:
    """What a platform request could have changed: projects, rooms, users, every room's messages."""
    store = server.services.store
    projects = await store.list_projects()
    rooms = [p.room_id for p in projects if p.room_id]
    return {
        "projects": [(p.external_id, p.stage, p.room_id, p.unstaffed) for p in projects],
        "users": sorted(u.username for u in await store.list_users()),
        "messages": {r: [m.id for m in (await store.list_messages(r, limit=100))[0]] for r in rooms},
        "members": {r: sorted(m.user_id for m in await store.list_members(r)) for r in rooms},
    }


async def test_a_signed_registration_creates_the_project_its_room_and_its_people(server, people: People):
    wang = await people.connect("am.wang")

    status, answer = await platform_post(server, PROJECTS, project_payload())

    assert status == 201, answer
    project = answer["project"]
    assert answer["created"] is True
    assert {k: project[k] for k in ("external_id", "name", "client_org", "products", "stage", "unstaffed")} == {
        "external_id": "SMP-2026-0031",
        "name": "银企直连",
        "client_org": HUAYUE,
        "products": ["银企直连"],
        "stage": "presales",
        "unstaffed": [],
    }
    # The account manager, connected, sees the room appear at once, titled by company and project.
    added = await wang.wait_for("room_added", lambda r: r["id"] == project["room_id"])
    assert added["title"] == f"{HUAYUE} · 银企直连"
    assert added["kind"] == "project" and added["my_role"] == "account_manager"
    assert added["project"]["external_id"] == "SMP-2026-0031"
    members = await wang.call("get_members", {"room_id": project["room_id"]})
    assert {(m["user"]["name"], m["role"]) for m in members["members"] if m["role"] != "bot"} == {
        ("王晓明", "account_manager"),
        ("陈思远", "solution_expert"),
        ("乔一帆", "client_contact"),
    }
    history = await wang.call("get_history", {"room_id": project["room_id"]})
    assert [m["text"] for m in history["messages"]] == ["项目已登记，当前阶段：售前。"]
    assert history["messages"][0]["sender"]["kind"] == "bot"


async def test_people_the_server_does_not_know_become_real_name_users_without_a_password(server, people: People):
    payload = project_payload(
        people=[
            {"username": "am.wang", "name": "随便写的名字", "role": "account_manager"},
            {"username": "dev.new", "name": "钱多多", "role": "developer"},
            {"username": "am.branch", "name": "孙丽", "role": "account_manager", "org": "云帆银行深圳分行"},
            {"username": "hy.qiao", "name": "乔一帆", "role": "client_contact", "email": "qiao@huayue-energy.example"},
        ]
    )
    await register(server, payload)

    status, body = await rest(server, "GET", "/api/admin/users", token=await people.admin_token())
    assert status == 200
    users = {u["username"]: u for u in body["users"]}
    assert users["am.wang"]["name"] == "王晓明"  # a known person keeps the name the bank's records give
    qiao = users["hy.qiao"]
    assert (qiao["name"], qiao["org"], qiao["kind"], qiao["roles"], qiao["email"]) == (
        "乔一帆",
        HUAYUE,
        "client",
        ["client_member"],
        "qiao@huayue-energy.example",
    )
    assert (users["dev.new"]["kind"], users["dev.new"]["org"], users["dev.new"]["roles"]) == (
        "staff",
        server.settings.bank_org,
        ["developer"],
    )
    assert users["am.branch"]["org"] == "云帆银行深圳分行"

    # No password yet: nobody can sign in as them.
    status, body = await rest(server, "POST", "/api/auth/login", json={"username": "hy.qiao", "password": "cloud2026"})
    assert (status, body["error"]["code"]) == (401, "unauthorized")
    await people.admin("PATCH", f"/api/admin/users/{qiao['id']}", {"password": "qiao-2026-pass"})
    assert await login(server.url, "hy.qiao", "qiao-2026-pass")


@pytest.mark.parametrize(
    "case",
    [
        "unsigned",
        "no timestamp",
        "no delivery id",
        "no signature",
        "wrong signature",
        "signature of another body",
        "wrong secret",
        "6 minutes early",
        "6 minutes late",
        "timestamp not a number",
        "signature without sha256=",
    ],
)
async def test_badly_signed_requests_are_refused_and_change_nothing(server, case: str):
    before = await snapshot(server)
    body = json.dumps(project_payload(), ensure_ascii=False).encode()
    now = int(time.time())
    kw: dict[str, object] = {
        "unsigned": {"drop": ("X-Timestamp", "X-Delivery-Id", "X-Signature")},
        "no timestamp": {"drop": ("X-Timestamp",)},
        "no delivery id": {"drop": ("X-Delivery-Id",)},
        "no signature": {"drop": ("X-Signature",)},
        "wrong signature": {"headers": {"X-Signature": "sha256=" + "0" * 64}},
        "signature of another body": {"headers": {"X-Signature": sign(SECRET, str(now), body.replace(b"31", b"32"))}},
        "wrong secret": {"secret": "another-secret-of-at-least-32-characters"},
        "6 minutes early": {"timestamp": str(now - 360)},
        "6 minutes late": {"timestamp": str(now + 360)},
        "timestamp not a number": {"timestamp": "yesterday"},
        "signature without sha256=": {"headers": {"X-Signature": sign(SECRET, str(now), body)[len("sha256=") :]}},
    }[case]  # type: ignore[assignment]
    if case in ("signature of another body", "signature without sha256="):
        kw["timestamp"] = str(now)

    status, answer = await platform_post(server, PROJECTS, body=body, **kw)  # type: ignore[arg-type]

    assert (status, answer["ok"], answer["error"]["code"]) == (401, False, "unauthorized")
    assert await snapshot(server) == before


async def test_a_timestamp_within_five_minutes_is_accepted(server):
    status, answer = await platform_post(server, PROJECTS, project_payload(), timestamp=str(int(time.time()) - 240))
    assert status == 201, answer


@pytest.mark.parametrize("timestamp", ["²", "1" * 5000, "-1796284800", " 1796284800"])
async def test_odd_timestamps_are_refused_with_401_not_a_server_error(server, timestamp: str):
    status, answer = await platform_post(server, PROJECTS, project_payload(), timestamp=timestamp)
    assert (status, answer["error"]["code"]) == (401, "unauthorized")
    assert await server.services.store.list_projects() != []  # the demo's, untouched
    assert await server.services.store.get_project_by_external_id("SMP-2026-0031") is None


async def test_a_signature_with_characters_beyond_ascii_is_refused_with_401(server):
    status, answer = await platform_post(server, PROJECTS, project_payload(), headers={"X-Signature": "sha256=签名"})
    assert (status, answer["error"]["code"]) == (401, "unauthorized")


async def test_header_names_are_case_insensitive(server):
    """HTTP header names carry no case; proxies and HTTP/2 send them in lower case."""
    body = json.dumps(project_payload(), ensure_ascii=False).encode()
    ts = str(int(time.time()))
    status, answer = await platform_post(
        server,
        PROJECTS,
        body=body,
        drop=("X-Timestamp", "X-Delivery-Id", "X-Signature"),
        headers={"x-timestamp": ts, "x-delivery-id": "lower-case-1", "x-signature": sign(SECRET, ts, body)},
    )
    assert status == 201, answer


async def test_a_large_registration_arriving_in_many_packets_is_read_whole(server):
    crowd = [
        {"username": f"hy.member{i:03d}", "name": f"华岳员工{i:03d}号", "role": "client_contact"} for i in range(200)
    ]
    payload = project_payload(people=crowd, name="司库系统" + "（一期）" * 20)
    assert len(json.dumps(payload, ensure_ascii=False).encode()) > 16_000
    status, answer = await platform_post(server, PROJECTS, payload)
    assert status == 201, answer
    members = await server.services.store.list_members(answer["project"]["room_id"])
    assert len([m for m in members if m.role != "bot"]) == 200


async def test_a_body_sent_in_chunks_is_read_whole_before_its_signature_is_checked(server):
    """Chunked transfer encoding is ordinary HTTP; the signature covers the whole body, however it arrives."""
    body = json.dumps(project_payload(), ensure_ascii=False).encode()
    ts = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-Timestamp": ts,
        "X-Delivery-Id": "chunked-1",
        "X-Signature": sign(SECRET, ts, body),
    }

    async def chunks() -> AsyncIterator[bytes]:
        half = len(body) // 2
        yield body[:half]
        await asyncio.sleep(0.05)
        yield body[half:]

    async with aiohttp.ClientSession() as http:
        async with http.post(server.url + PROJECTS, data=chunks(), headers=headers) as resp:
            assert resp.status == 201, await resp.text()


async def test_without_a_configured_secret_every_platform_request_is_refused(server_factory: ServerFactory):
    server = await server_factory()  # no platform_secret
    assert server.settings.platform_secret is None
    for secret in (SECRET, ""):
        status, answer = await platform_post(server, PROJECTS, project_payload(), secret=secret)
        assert (status, answer["error"]["code"]) == (401, "unauthorized")
    status, answer = await platform_post(
        server, f"{PROJECTS}/SMP-2026-0017/stage", {"external_id": "SMP-2026-0017", "stage": "aftersales"}
    )
    assert (status, answer["error"]["code"]) == (401, "unauthorized")
    assert await server.services.store.get_project_by_external_id("SMP-2026-0031") is None
    assert (await server.services.store.get_project_by_external_id("SMP-2026-0017")).stage == "implementation"


async def test_a_replayed_delivery_and_a_repeated_external_id_answer_with_the_same_project(server, people: People):
    wang = await people.connect("am.wang")
    first_status, first = await platform_post(server, PROJECTS, project_payload(), delivery_id="delivery-0001")
    assert first_status == 201
    await wang.wait_for("room_added", lambda r: r["id"] == first["project"]["room_id"])
    after_first = await snapshot(server)

    replay_status, replay = await platform_post(server, PROJECTS, project_payload(), delivery_id="delivery-0001")
    # The platform's next delivery for the same project, even with changed details, changes nothing either.
    newcomer = {"username": "hy.new", "name": "新人", "role": "client_contact"}
    changed = project_payload(name="改过的名字", people=[newcomer])
    again_status, again = await platform_post(server, PROJECTS, changed, delivery_id="delivery-0002")

    assert (replay_status, replay["created"]) == (200, False)
    assert (again_status, again["created"]) == (200, False)
    assert replay["project"] == first["project"] == again["project"]
    assert await snapshot(server) == after_first
    await asyncio.sleep(0.2)
    assert len(wang.events("room_added")) == 1


async def test_concurrent_deliveries_of_one_project_create_it_once(server):
    answers = await asyncio.gather(*(platform_post(server, PROJECTS, project_payload()) for _ in range(6)))
    statuses = sorted(status for status, _ in answers)
    assert statuses == [200] * 5 + [201], answers
    assert len({a["project"]["id"] for _, a in answers}) == 1
    projects = [p for p in await server.services.store.list_projects() if p.external_id == "SMP-2026-0031"]
    assert len(projects) == 1
    room_id = answers[0][1]["project"]["room_id"]
    assert room_id and all(a["project"]["room_id"] == room_id for _, a in answers)
    assert len([m for m in await server.services.store.list_members(room_id) if m.role != "bot"]) == 3


async def test_two_projects_naming_the_same_new_person_at_once_both_get_them(server):
    first, second = await asyncio.gather(
        platform_post(server, PROJECTS, project_payload("SMP-2026-0031")),
        platform_post(server, PROJECTS, project_payload("SMP-2026-0032", products=["司库"], name="司库系统")),
    )
    assert (first[0], second[0]) == (201, 201), (first, second)
    qiao = await server.services.store.get_user_by_username("hy.qiao")
    assert qiao is not None
    for _, answer in (first, second):
        member = await server.services.store.get_membership(answer["project"]["room_id"], qiao.id)
        assert member is not None and member.role == "client_contact"


def _without(field: str) -> dict[str, object]:
    payload = project_payload()
    del payload[field]
    return payload


BAD_PAYLOADS = {
    "not JSON": b"{external_id: SMP-1}",
    "a list": [project_payload()],
    "no external id": _without("external_id"),
    "no name": _without("name"),
    "no client org": _without("client_org"),
    "no products": project_payload(products=[]),
    "a product not in the catalogue": project_payload(products=["银企直连", "跨境支付"]),
    "a name with a direction override": project_payload(
        people=[{"username": "hy.qiao", "name": "乔\u202e帆一", "role": "client_contact"}]
    ),
    "a name with a line separator (it would break email headers)": project_payload(
        people=[{"username": "hy.qiao", "name": "乔\u2028一帆", "role": "client_contact", "email": "q@h.example"}]
    ),
    "a client org with a paragraph separator": project_payload(client_org="华岳能源\u2029股份有限公司"),
    "an email address in brackets": project_payload(
        people=[{"username": "hy.qiao", "name": "乔一帆", "role": "client_contact", "email": "<q@h.example>"}]
    ),
    "an email address without a domain": project_payload(
        people=[{"username": "hy.qiao", "name": "乔一帆", "role": "client_contact", "email": "qiao@huayue"}]
    ),
    "an invisible project name": project_payload(name="\u200b\u2800"),
    "unknown stage": project_payload(stage="done"),
    "unknown field": project_payload(budget=100),
    "external id with a slash": project_payload(external_id="SMP/1"),
    "unknown role": project_payload(people=[{"username": "x.y", "name": "某人", "role": "boss"}]),
    "bad username": project_payload(people=[{"username": "乔一帆", "name": "乔一帆", "role": "client_contact"}]),
    "a person twice": project_payload(
        people=[
            {"username": "hy.qiao", "name": "乔一帆", "role": "client_contact"},
            {"username": "hy.qiao", "name": "乔一帆", "role": "client_contact"},
        ]
    ),
    "client of another company": project_payload(
        people=[
            {"username": "hy.qiao", "name": "乔一帆", "role": "client_contact"},
            {"username": "rf.zhou", "name": "周敏", "role": "client_contact"},
        ]
    ),
    "staff as client contact": project_payload(
        people=[{"username": "ss.liu", "name": "刘婷", "role": "client_contact"}]
    ),
    "client as account manager": project_payload(
        people=[{"username": "xh.li", "name": "李娜", "role": "account_manager"}]
    ),
    "the system user": project_payload(people=[{"username": "@system", "name": "系统", "role": "developer"}]),
}


@pytest.mark.parametrize("case", list(BAD_PAYLOADS))
async def test_a_bad_payload_is_refused_with_400_and_creates_nothing(server, case: str):
    before = await snapshot(server)
    bad = BAD_PAYLOADS[case]
    body = bad if isinstance(bad, bytes) else json.dumps(bad, ensure_ascii=False).encode()

    status, answer = await platform_post(server, PROJECTS, body=body, delivery_id="delivery-bad")

    assert (status, answer["ok"], answer["error"]["code"]) == (400, False, "invalid_payload"), answer
    assert await snapshot(server) == before
    # The refused delivery did not use up its id: the platform can send it again, corrected.
    status, answer = await platform_post(server, PROJECTS, project_payload(), delivery_id="delivery-bad")
    assert (status, answer.get("created")) == (201, True), answer


async def test_an_unsigned_bad_payload_gets_401_not_400(server):
    status, answer = await platform_post(server, PROJECTS, body=b"not json", drop=("X-Signature",))
    assert (status, answer["error"]["code"]) == (401, "unauthorized")


async def test_a_signed_stage_move_of_an_unknown_project_is_404(server):
    status, answer = await platform_post(
        server, f"{PROJECTS}/SMP-9999-0000/stage", {"external_id": "SMP-9999-0000", "stage": "implementation"}
    )
    assert (status, answer["error"]["code"]) == (404, "not_found")


async def test_the_cli_sends_signed_requests_to_a_running_server(server, tmp_path: Path):
    """`run.py platform-send` as an operator uses it: the secret from the environment, the server by --url."""
    payload_file = tmp_path / "project.json"
    payload_file.write_text(json.dumps(project_payload(), ensure_ascii=False), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT_")}

    async def cli(*args: str, secret: str = SECRET) -> tuple[int, dict[str, Any], str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(REPO / "run.py"),
            "platform-send",
            "--url",
            server.url,
            *args,
            cwd=tmp_path,
            env={**env, "CHAT_PLATFORM_SECRET": secret},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode is not None
        return proc.returncode, json.loads(out.decode() or "{}"), err.decode()

    code, answer, err = await cli("project", str(payload_file))
    assert (code, answer.get("created")) == (0, True), (answer, err)
    # Two operators at once (two processes, to keep the test short): one with the right secret, one with a wrong one.
    (code, answer, err), (bad_code, refused, _) = await asyncio.gather(
        cli("stage", "SMP-2026-0031", "implementation"),
        cli("stage", "SMP-2026-0031", "implementation", secret="x" * 40),
    )
    assert code == 0, (answer, err)
    assert answer["project"]["stage"] == "implementation"
    assert bad_code == 1 and refused["error"]["code"] == "unauthorized"
    project = await server.services.store.get_project_by_external_id("SMP-2026-0031")
    assert project is not None and project.stage == "implementation"
    texts = [m.text for m in (await server.services.store.list_messages(project.room_id or ""))[0]]
    assert texts.count("项目阶段变更：售前 → 售中。") == 1


async def test_platform_routes_ignore_user_tokens(server):
    """A signed-in admin is not the platform: a bearer token does not replace the signature."""
    admin = await token_of(server, "admin")
    status, answer = await rest(server, "POST", PROJECTS, token=admin, json=project_payload())
    assert (status, answer["error"]["code"]) == (401, "unauthorized")


async def test_a_signed_stage_move_cannot_be_replayed_against_another_project(server):
    await register(server, project_payload("SMP-2026-0041"))
    await register(server, project_payload("SMP-2026-0042"))
    captured = json.dumps({"external_id": "SMP-2026-0041", "stage": "implementation"}).encode()
    status, _ = await platform_post(server, f"{PROJECTS}/SMP-2026-0041/stage", body=captured)
    assert status == 200
    # The same signed body, sent to the other project's URL under a new delivery id.
    status, answer = await platform_post(server, f"{PROJECTS}/SMP-2026-0042/stage", body=captured)
    assert status == 400 and answer["error"]["code"] == "invalid_payload"
    other = await server.services.store.get_project_by_external_id("SMP-2026-0042")
    assert other is not None and other.stage == "presales"


def test_the_worked_example_in_the_protocol_doc_is_right():
    from chatserver.signing import signature

    doc = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text(encoding="utf-8")
    body = b'{"external_id":"SMP-2026-0031","stage":"implementation"}'
    expected = signature("example-platform-secret-0123456789abcdef", "1796284800", body)
    assert f"X-Signature: {expected}" in doc
