"""The audit log: who did what, when, with what outcome — and only admins read it, filtered by time, actor, room."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from tests.conftest import RunningServer, ServerFactory, room_id_by_title
from tests.platform.helpers import SECRET, People, move, project_payload, register, rest, token_of, user_id


@pytest.fixture
async def server(server_factory: ServerFactory) -> RunningServer:
    srv: RunningServer = await server_factory(platform_secret=SECRET)
    return srv


@pytest.fixture
async def people(server: RunningServer) -> AsyncIterator[People]:
    pool = People(server)
    yield pool
    await pool.close()


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def audit(server: RunningServer, people: People, **query: Any) -> list[dict[str, Any]]:
    status, body = await rest(server, "GET", "/api/admin/audit", token=await people.admin_token(), params=query)
    assert status == 200, body
    entries: list[dict[str, Any]] = body["entries"]
    return entries


def only(entries: list[dict[str, Any]], action: str, **match: Any) -> list[dict[str, Any]]:
    return [e for e in entries if e["action"] == action and all(e.get(k) == v for k, v in match.items())]


async def test_logins_are_recorded_with_their_outcome_and_never_the_password(server, people: People):
    wang = await user_id(server, "am.wang")
    since = stamp(datetime.now(UTC))
    ok = await rest(server, "POST", "/api/auth/login", json={"username": "am.wang", "password": "cloud2026"})
    wrong = await rest(server, "POST", "/api/auth/login", json={"username": "am.wang", "password": "guess-1234"})
    nobody = await rest(server, "POST", "/api/auth/login", json={"username": "nobody", "password": "guess-5678"})
    assert (ok[0], wrong[0], nobody[0]) == (200, 401, 401)

    entries = only(await audit(server, people, since=since), "login")

    assert [(e["actor_id"], e["outcome"]) for e in entries] == [(None, "failure"), (wang, "failure"), (wang, "success")]
    assert entries[0]["detail"] == {"username": "nobody"}
    assert all(e["at"].endswith("Z") for e in entries)
    assert "guess" not in repr(entries) and "cloud2026" not in repr(entries)


async def test_project_creation_membership_and_stage_changes_are_recorded(server, people: People):
    since = stamp(datetime.now(UTC))
    project = await register(server, project_payload(), delivery_id="audit-delivery-1")
    room_id = project["room_id"]
    assert (await move(server, "SMP-2026-0031", "implementation"))[0] == 200
    assert (await move(server, "SMP-2026-0031", "closed"))[0] == 409

    entries = await audit(server, people, since=since, room_id=room_id)
    everything = await audit(server, people, since=since)

    created = only(everything, "project_created")
    assert len(created) == 1 and created[0]["target_id"] == project["id"]
    assert created[0]["detail"]["external_id"] == "SMP-2026-0031"
    assert created[0]["detail"]["delivery_id"] == "audit-delivery-1"
    # People joined by role (the AI advisor's bot user joins too, as "bot")
    added = {
        (e["target_id"], e["detail"]["role"]) for e in only(entries, "member_added") if e["detail"]["role"] != "bot"
    }
    assert added == {
        (await user_id(server, "am.wang"), "account_manager"),
        (await user_id(server, "se.chen"), "solution_expert"),
        (await user_id(server, "hy.qiao"), "client_contact"),
        (await user_id(server, "ss.liu"), "service_specialist"),
        (await user_id(server, "dev.zhang"), "developer"),
    }
    moves = only(entries, "stage_changed")
    assert [(e["outcome"], e["detail"]["stage_from"], e["detail"]["stage_to"]) for e in moves] == [
        ("failure", "implementation", "closed"),
        ("success", "presales", "implementation"),
    ]
    assert all(e["target_id"] == project["id"] and e["actor_id"] is None for e in moves)
    # Newest first, throughout.
    assert [e["at"] for e in everything] == sorted((e["at"] for e in everything), reverse=True)


async def test_user_creation_and_role_skill_and_password_changes_are_recorded(server, people: People):
    admin = await user_id(server, "admin")
    made = await people.create_user("ss.new", "郑洁", "云帆银行交易银行部", "staff", ["service_specialist"])
    await people.admin(
        "PATCH",
        f"/api/admin/users/{made}",
        {"roles": ["service_specialist", "developer"], "skills": ["司库"], "max_sessions": 1, "name": "郑洁"},
    )

    entries = await audit(server, people, actor_id=admin)

    created = only(entries, "user_created", target_id=made)
    assert len(created) == 1 and created[0]["detail"]["roles"] == ["service_specialist"]
    updated = only(entries, "user_updated", target_id=made)
    assert len(updated) == 1
    assert updated[0]["detail"]["changes"] == {
        "roles": {"from": ["service_specialist"], "to": ["service_specialist", "developer"]},
        "skills": {"from": [], "to": ["司库"]},
        "max_sessions": {"from": 3, "to": 1},
    }
    assert updated[0]["outcome"] == "success"


async def test_a_password_change_is_recorded_without_the_password(server, people: People):
    qiao = await people.create_user("hy.qiao", "乔一帆", "华岳能源股份有限公司", "client", ["client_member"])
    await people.admin("PATCH", f"/api/admin/users/{qiao}", {"password": "a-new-secret-1"})
    entry = only(await audit(server, people, limit=1), "user_updated")[0]
    assert entry["detail"]["changes"] == {"password": {"from": "***", "to": "***"}}
    assert "a-new-secret" not in repr(entry)


async def test_edits_and_deletes_are_recorded_with_the_old_text(server, people: People):
    wang = await people.connect("am.wang")
    room_id = await room_id_by_title(wang, "星河")
    sent = await wang.call(
        "send_message", {"room_id": room_id, "text": "报价 120 万", "client_msg_id": uuid.uuid4().hex}
    )
    message_id = sent["message"]["id"]
    await wang.call("edit_message", {"message_id": message_id, "text": "报价 100 万"})
    await wang.call("delete_message", {"message_id": message_id})

    entries = await audit(server, people, room_id=room_id, actor_id=wang.user_id)

    assert [(e["action"], e["detail"]["old_text"]) for e in entries[:2]] == [
        ("message_deleted", "报价 100 万"),
        ("message_edited", "报价 120 万"),
    ]
    assert all(e["target_id"] == message_id for e in entries[:2])


async def test_the_expert_desk_and_member_removal_are_recorded(server, people: People):
    chen, li = await people.connect("se.chen"), await people.connect("xh.li")
    session = (await li.call("request_expert", {"product": "司库", "text": "问题"}))["session"]
    lin = await people.connect("se.lin")
    room_id = session["room_id"]
    assert (await chen.call("transfer_session", {"room_id": room_id, "to_user_id": lin.user_id}))["ok"]
    assert (await lin.call("close_session", {"room_id": room_id}))["ok"]
    assert (await li.call("rate_session", {"room_id": room_id, "rating": 4}))["ok"]

    entries = await audit(server, people, room_id=room_id)

    actions = [e["action"] for e in reversed(entries) if e["action"].startswith("expert_")]
    assert actions == [
        "expert_requested",
        "expert_assigned",
        "expert_transferred",
        "expert_assigned",
        "expert_session_closed",
        "expert_session_rated",
    ]
    removed = only(entries, "member_removed")
    assert [(e["target_id"], e["actor_id"]) for e in removed] == [(chen.user_id, chen.user_id)]
    assert [e["target_id"] for e in only(entries, "expert_assigned")] == [lin.user_id, chen.user_id]
    assert only(entries, "expert_session_rated")[0]["detail"] == {"rating": 4}


async def test_filters_by_time_actor_and_room_combine(server, people: People):
    wang, liu = await people.connect("am.wang"), await people.connect("ss.liu")
    xinghe = await room_id_by_title(wang, "星河")
    ruifeng = await room_id_by_title(wang, "瑞丰")

    async def edit(client: Any, room_id: str, text: str) -> None:
        sent = await client.call("send_message", {"room_id": room_id, "text": text, "client_msg_id": uuid.uuid4().hex})
        assert (await client.call("edit_message", {"message_id": sent["message"]["id"], "text": text + "!"}))["ok"]

    t0 = datetime.now(UTC)
    await edit(wang, xinghe, "一")
    t1 = datetime.now(UTC)
    await edit(liu, xinghe, "二")
    await edit(wang, ruifeng, "三")
    t2 = datetime.now(UTC)
    await edit(wang, xinghe, "四")

    def texts(entries: list[dict[str, Any]]) -> list[str]:
        return [e["detail"]["old_text"] for e in entries if e["action"] == "message_edited"]

    assert texts(await audit(server, people, since=stamp(t0))) == ["四", "三", "二", "一"]
    assert texts(await audit(server, people, since=stamp(t1), until=stamp(t2))) == ["三", "二"]
    assert texts(await audit(server, people, since=stamp(t0), actor_id=wang.user_id)) == ["四", "三", "一"]
    assert texts(await audit(server, people, since=stamp(t0), room_id=xinghe)) == ["四", "二", "一"]
    assert texts(await audit(server, people, since=stamp(t0), room_id=xinghe, actor_id=wang.user_id)) == ["四", "一"]
    assert texts(await audit(server, people, since=stamp(t1), until=stamp(t2), room_id=ruifeng)) == ["三"]
    # A zone other than UTC means the same moment.
    t1_beijing = t1.astimezone(timezone(timedelta(hours=8)))
    assert texts(await audit(server, people, since=t1_beijing.isoformat(), until=stamp(t2))) == ["三", "二"]
    assert len(await audit(server, people, limit=2)) == 2


@pytest.mark.parametrize(
    "query",
    [
        {"since": "2026-12-03T08:00:00"},
        {"until": "yesterday"},
        {"since": "0001-01-01T00:00:00+14:00"},  # a real time, but before the first one UTC can hold
        {"limit": "0"},
        {"limit": "1001"},
        {"limit": "ten"},
    ],
)
async def test_bad_filters_are_refused(server, people: People, query: dict[str, str]):
    status, body = await rest(server, "GET", "/api/admin/audit", token=await people.admin_token(), params=query)
    assert (status, body["error"]["code"]) == (400, "invalid_payload")


async def test_only_admins_read_the_audit_log(server):
    for username in ("am.wang", "se.chen", "xh.li"):
        status, body = await rest(server, "GET", "/api/admin/audit", token=await token_of(server, username))
        assert (status, body["error"]["code"]) == (403, "forbidden"), username
    status, body = await rest(server, "GET", "/api/admin/audit")
    assert (status, body["error"]["code"]) == (401, "unauthorized")
