"""Stage moves from the platform: presales → implementation → aftersales → closed, one step at a time, and the
room follows — a system message, `room_updated` to its members, new members, and read-only at the end."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.conftest import RunningServer
from tests.platform.helpers import (
    PROJECTS,
    People,
    move,
    platform_post,
    project_payload,
    register,
    rest,
    token_of,
)

STAGES = ["presales", "implementation", "aftersales", "closed"]


def cid() -> str:
    return uuid.uuid4().hex


async def room_state(server: RunningServer, external_id: str) -> dict[str, object]:
    store = server.services.store
    project = await store.get_project_by_external_id(external_id)
    assert project is not None and project.room_id
    room = await store.get_room(project.room_id)
    assert room is not None
    messages, _ = await store.list_messages(project.room_id, limit=100)
    return {
        "stage": project.stage,
        "unstaffed": project.unstaffed,
        "read_only": room.read_only,
        "members": sorted((m.user_id, m.role) for m in await store.list_members(project.room_id)),
        "messages": [m.text for m in messages],
    }


async def test_a_project_walks_through_every_stage_and_its_room_follows(server, people: People):
    project = await register(server, project_payload())
    room_id = project["room_id"]
    wang = await people.connect("am.wang")
    qiao = await people.connect("hy.qiao")  # the client contact the platform created
    liu = await people.connect("ss.liu")
    zhang = await people.connect("dev.zhang")
    huang = await people.connect("as.huang")

    # presales → implementation: a service specialist and a developer join, and see the room appear at once.
    status, answer = await move(server, "SMP-2026-0031", "implementation")
    assert (status, answer["moved"], answer["project"]["stage"]) == (200, True, "implementation")
    for member in (wang, qiao, liu, zhang):
        updated = await member.wait_for("room_updated", lambda r: r["project"]["stage"] == "implementation")
        assert updated["id"] == room_id and updated["read_only"] is False
    for newcomer, role in ((liu, "service_specialist"), (zhang, "developer")):
        added = await newcomer.wait_for("room_added", lambda r: r["id"] == room_id)
        assert added["my_role"] == role and added["project"]["stage"] == "implementation"
    await qiao.wait_for("message", lambda m: m["text"] == "已自动分配研发人员：张伟。")
    texts = [m["text"] for m in qiao.events("message")]
    assert texts == ["项目阶段变更：售前 → 售中。", "已自动分配服务专员：刘婷。", "已自动分配研发人员：张伟。"]
    assert huang.events("room_added") == []
    members = await qiao.call("get_members", {"room_id": room_id})
    roles = {m["user"]["name"]: m["role"] for m in members["members"] if m["role"] != "bot"}
    assert roles == {
        "王晓明": "account_manager",
        "陈思远": "solution_expert",
        "乔一帆": "client_contact",
        "刘婷": "service_specialist",
        "张伟": "developer",
    }

    # implementation → aftersales: the after-sales staff on duty for the product join.
    status, answer = await move(server, "SMP-2026-0031", "aftersales")
    assert (status, answer["moved"], answer["project"]["stage"]) == (200, True, "aftersales")
    added = await huang.wait_for("room_added", lambda r: r["id"] == room_id)
    assert added["my_role"] == "after_sales" and added["project"]["stage"] == "aftersales"
    for member in (wang, qiao, liu, zhang, huang):
        await member.wait_for("room_updated", lambda r: r["project"]["stage"] == "aftersales")
    await qiao.wait_for("message", lambda m: m["text"] == "售后值班人员已加入：黄磊。")
    assert "项目阶段变更：售中 → 售后。" in [m["text"] for m in qiao.events("message")]

    # aftersales → closed: read-only for everyone; the history stays readable.
    status, answer = await move(server, "SMP-2026-0031", "closed")
    assert (status, answer["moved"], answer["project"]["stage"]) == (200, True, "closed")
    for member in (wang, qiao, liu, zhang, huang):
        closed = await member.wait_for("room_updated", lambda r: r["project"]["stage"] == "closed" and r["read_only"])
        assert closed["id"] == room_id
    await qiao.wait_for("message", lambda m: m["text"] == "项目阶段变更：售后 → 结项。")

    refused = await wang.call("send_message", {"room_id": room_id, "text": "还能发吗？", "client_msg_id": cid()})
    assert refused["ok"] is False and refused["error"]["code"] == "room_read_only"
    refused = await qiao.call("set_typing", {"room_id": room_id, "typing": True})
    assert refused["error"]["code"] == "room_read_only"
    first = (await qiao.call("get_history", {"room_id": room_id}))["messages"][0]
    assert first["text"] == "项目已登记，当前阶段：售前。"
    status, page = await rest(server, "GET", f"/api/rooms/{room_id}/messages", token=await token_of(server, "hy.qiao"))
    assert status == 200 and page["messages"][-1]["text"] == "项目阶段变更：售后 → 结项。"
    listed = {r["id"]: r for r in (await qiao.call("list_rooms"))["rooms"]}
    assert listed[room_id]["read_only"] is True and listed[room_id]["project"]["stage"] == "closed"
    assert "还能发吗？" not in [m["text"] for m in (await wang.call("get_history", {"room_id": room_id}))["messages"]]


async def test_messages_of_a_closed_project_can_be_neither_edited_nor_deleted(server, people: People):
    project = await register(server, project_payload())
    wang = await people.connect("am.wang")
    sent = await wang.call("send_message", {"room_id": project["room_id"], "text": "方案已发", "client_msg_id": cid()})
    for stage in STAGES[1:]:
        assert (await move(server, "SMP-2026-0031", stage))[0] == 200
    edit = await wang.call("edit_message", {"message_id": sent["message"]["id"], "text": "改一下"})
    delete = await wang.call("delete_message", {"message_id": sent["message"]["id"]})
    assert edit["error"]["code"] == delete["error"]["code"] == "room_read_only"
    history = await wang.call("get_history", {"room_id": project["room_id"]})
    assert [m["text"] for m in history["messages"] if m["id"] == sent["message"]["id"]] == ["方案已发"]


REFUSED = [
    ("presales", "aftersales"),  # skips a stage
    ("presales", "closed"),
    ("implementation", "presales"),  # backwards
    ("implementation", "closed"),
    ("aftersales", "implementation"),
    ("aftersales", "presales"),
    ("closed", "aftersales"),  # from closed: nowhere
    ("closed", "implementation"),
    ("closed", "presales"),
]


@pytest.mark.parametrize(("start", "target"), REFUSED)
async def test_moves_other_than_one_step_forward_are_refused_and_change_nothing(
    server, people: People, start: str, target: str
):
    await register(server, project_payload(stage=start))
    wang = await people.connect("am.wang")
    before = await room_state(server, "SMP-2026-0031")
    assert before["stage"] == start

    status, answer = await move(server, "SMP-2026-0031", target)

    assert (status, answer["ok"], answer["error"]["code"]) == (409, False, "invalid_stage_move")
    assert await room_state(server, "SMP-2026-0031") == before
    await asyncio.sleep(0.1)
    assert wang.events("room_updated") == [] and wang.events("message") == [] and wang.events("room_added") == []
    status, body = await rest(server, "GET", "/api/admin/audit?limit=5", token=await people.admin_token())
    refusal = body["entries"][0]
    assert (refusal["action"], refusal["outcome"]) == ("stage_changed", "failure")
    assert (refusal["detail"]["stage_from"], refusal["detail"]["stage_to"]) == (start, target)


async def test_a_move_to_the_current_stage_or_a_replayed_move_changes_nothing(server, people: People):
    await register(server, project_payload())
    status, answer = await move(server, "SMP-2026-0031", "implementation", delivery_id="move-1")
    assert (status, answer["moved"]) == (200, True)
    wang = await people.connect("am.wang")
    before = await room_state(server, "SMP-2026-0031")

    replay = await move(server, "SMP-2026-0031", "implementation", delivery_id="move-1")
    same = await move(server, "SMP-2026-0031", "implementation")

    for status, answer in (replay, same):
        assert (status, answer["moved"], answer["project"]["stage"]) == (200, False, "implementation")
    assert await room_state(server, "SMP-2026-0031") == before
    await asyncio.sleep(0.1)
    assert wang.events("room_updated") == [] and wang.events("message") == []


async def test_a_replayed_move_after_the_project_moved_on_changes_nothing(server):
    await register(server, project_payload())
    assert (await move(server, "SMP-2026-0031", "implementation", delivery_id="move-1"))[0] == 200
    assert (await move(server, "SMP-2026-0031", "aftersales", delivery_id="move-2"))[0] == 200
    before = await room_state(server, "SMP-2026-0031")

    status, answer = await move(server, "SMP-2026-0031", "implementation", delivery_id="move-1")

    assert (status, answer["moved"], answer["project"]["stage"]) == (200, False, "aftersales")
    assert await room_state(server, "SMP-2026-0031") == before


async def test_a_refused_or_unknown_move_is_seen_and_never_applies_on_a_replay(server):
    # A move for a project not registered yet (404), then registered: replaying that delivery changes nothing.
    assert (await move(server, "SMP-2026-0031", "implementation", delivery_id="early"))[0] == 404
    await register(server, project_payload())
    status, answer = await move(server, "SMP-2026-0031", "implementation", delivery_id="early")
    assert (status, answer["moved"], answer["project"]["stage"]) == (200, False, "presales")
    # A refused move (409: two steps), replayed once it would be one step: changes nothing.
    assert (await move(server, "SMP-2026-0031", "aftersales", delivery_id="skip"))[0] == 409
    assert (await move(server, "SMP-2026-0031", "implementation"))[0] == 200
    status, answer = await move(server, "SMP-2026-0031", "aftersales", delivery_id="skip")
    assert (status, answer["moved"], answer["project"]["stage"]) == (200, False, "implementation")


async def test_concurrent_deliveries_of_one_move_move_the_project_once(server):
    await register(server, project_payload())
    answers = await asyncio.gather(*(move(server, "SMP-2026-0031", "implementation") for _ in range(5)))
    assert sorted((status, a.get("moved")) for status, a in answers) == [(200, False)] * 4 + [(200, True)], answers
    state = await room_state(server, "SMP-2026-0031")
    assert [role for _, role in state["members"]].count("service_specialist") == 1  # type: ignore[attr-defined]
    assert state["messages"].count("项目阶段变更：售前 → 售中。") == 1  # type: ignore[attr-defined]


async def test_a_stage_move_with_a_bad_payload_is_refused(server):
    await register(server, project_payload())
    for payload in ({"stage": "done"}, {}, {"stage": "implementation", "extra": 1}, ["implementation"]):
        status, answer = await platform_post(server, f"{PROJECTS}/SMP-2026-0031/stage", payload)
        assert (status, answer["error"]["code"]) == (400, "invalid_payload"), payload
    assert (await server.services.store.get_project_by_external_id("SMP-2026-0031")).stage == "presales"


async def test_a_project_registered_in_a_later_stage_is_walked_up_to_it(server):
    project = await register(server, project_payload(stage="aftersales"))
    assert project["stage"] == "aftersales"
    state = await room_state(server, "SMP-2026-0031")
    roles = sorted(role for _, role in state["members"] if role != "bot")  # type: ignore[attr-defined]
    assert roles == sorted(
        ["account_manager", "solution_expert", "client_contact", "service_specialist", "developer", "after_sales"]
    )
    assert state["read_only"] is False


async def test_the_board_shows_staff_their_projects_admins_all_and_clients_nothing(server, people: People):
    await register(server, project_payload())  # 华岳: am.wang, se.chen, hy.qiao
    wang, liu, lin, admin, li = [
        await people.connect(name) for name in ("am.wang", "ss.liu", "se.lin", "admin", "xh.li")
    ]

    def ids(ack: dict) -> set[str]:
        assert ack["ok"], ack
        return {p["external_id"] for p in ack["projects"]}

    assert ids(await wang.call("list_projects")) == {"SMP-2026-0017", "SMP-2026-0023", "SMP-2026-0031"}
    assert ids(await liu.call("list_projects")) == {"SMP-2026-0017"}
    assert ids(await lin.call("list_projects")) == set()
    everything = await admin.call("list_projects")
    assert ids(everything) == {"SMP-2026-0017", "SMP-2026-0023", "SMP-2026-0031"}
    assert all("unstaffed" in p and p["room_id"] for p in everything["projects"])
    assert await li.call("list_projects") == {
        "ok": False,
        "error": {"code": "forbidden", "message": "the project board is for bank staff"},
    }

    # The board follows the moves: ss.liu is staffed onto 华岳 and finds it on theirs.
    assert (await move(server, "SMP-2026-0031", "implementation"))[0] == 200
    await liu.wait_for("room_added", lambda r: r["project"] and r["project"]["external_id"] == "SMP-2026-0031")
    board = await liu.call("list_projects")
    assert {p["external_id"]: p["stage"] for p in board["projects"]} == {
        "SMP-2026-0017": "implementation",
        "SMP-2026-0031": "implementation",
    }


async def test_only_admins_list_every_project_over_rest(server):
    for username, expected in (("admin", 200), ("am.wang", 403), ("xh.li", 403)):
        status, body = await rest(server, "GET", "/api/admin/projects", token=await token_of(server, username))
        assert status == expected, body
    status, body = await rest(server, "GET", "/api/admin/projects")
    assert status == 401


async def test_admins_hear_of_every_projects_stage_change_with_its_staffing(server, people: People):
    admin = await people.connect("admin")  # in no project room
    wang = await people.connect("am.wang")
    status, _ = await move(server, "SMP-2026-0023", "implementation")
    assert status == 200
    heard = await admin.wait_for("project_updated", lambda p: p["external_id"] == "SMP-2026-0023")
    assert heard["stage"] == "implementation" and "unstaffed" in heard
    await wang.wait_for("room_updated", lambda r: r["project"]["stage"] == "implementation")
    assert wang.events("project_updated") == []  # only admins get it
