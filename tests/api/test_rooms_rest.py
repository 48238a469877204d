"""The REST read routes: me, rooms, a room's messages and members; and what another company can learn from them."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.api.helpers import http, token_for
from tests.api.test_auth_rest import assert_error
from tests.conftest import RunningServer, room_id_by_title

ROOM_NOT_FOUND = {"ok": False, "error": {"code": "not_found", "message": "room not found"}}


async def room_of(server: RunningServer, token: str, fragment: str) -> dict[str, Any]:
    status, body = await http(server, "GET", "/api/rooms", token=token)
    assert status == 200, body
    return next(r for r in body["rooms"] if fragment in r["title"])


async def test_me_is_the_token_holder(server):
    token, user_id = await token_for(server, "xh.li")
    status, body = await http(server, "GET", "/api/me", token=token)
    assert status == 200 and body["ok"] is True
    me = body["user"]
    assert me["id"] == user_id and me["username"] == "xh.li"
    assert {k: me[k] for k in ("name", "org", "kind", "roles", "active")} == {
        "name": "李娜",
        "org": "星河制造集团有限公司",
        "kind": "client",
        "roles": ["client_admin"],
        "active": True,
    }
    assert not any("password" in key or "hash" in key for key in me)


async def test_rooms_lists_only_the_users_own_rooms(server):
    token, _ = await token_for(server, "xh.li")
    status, body = await http(server, "GET", "/api/rooms", token=token)
    assert status == 200 and body["ok"] is True
    assert [r["title"] for r in body["rooms"]] == ["星河制造集团有限公司 · 银企直连"]
    room = body["rooms"][0]
    assert room["kind"] == "project" and room["my_role"] == "client_contact"
    assert room["project"]["client_org"] == "星河制造集团有限公司"
    assert room["last_seq"] >= 1 and room["last_message"]["seq"] == room["last_seq"]
    manager, _ = await token_for(server, "am.wang")
    titles = sorted(r["title"] for r in (await http(server, "GET", "/api/rooms", token=manager))[1]["rooms"])
    assert titles == ["星河制造集团有限公司 · 银企直连", "瑞丰物流股份有限公司 · 司库系统"]


async def test_messages_pages_like_get_history(server, clients):
    sender = await clients(server, "am.wang")
    room_id = await room_id_by_title(sender, "星河")
    for i in range(5):
        ack = await sender.call("send_message", {"room_id": room_id, "text": f"第{i}条", "client_msg_id": f"p{i}"})
        assert ack["ok"] is True
    last = ack["message"]["seq"]
    token, _ = await token_for(server, "xh.li")
    path = f"/api/rooms/{room_id}/messages"

    status, body = await http(server, "GET", path, token=token)
    assert status == 200 and body["ok"] is True
    seqs = [m["seq"] for m in body["messages"]]
    assert seqs == list(range(1, last + 1)) and body["has_more"] is False

    status, body = await http(server, "GET", path, token=token, params={"limit": "2"})
    assert [m["seq"] for m in body["messages"]] == [last - 1, last] and body["has_more"] is True
    status, body = await http(server, "GET", path, token=token, params={"limit": "2", "before_seq": str(last - 1)})
    assert [m["seq"] for m in body["messages"]] == [last - 3, last - 2] and body["has_more"] is True
    status, body = await http(server, "GET", path, token=token, params={"after_seq": str(last - 2), "limit": "100"})
    assert [m["seq"] for m in body["messages"]] == [last - 1, last] and body["has_more"] is False
    assert body["messages"][-1]["text"] == "第4条"
    assert body["messages"][-1]["sender"]["name"] == "王晓明"
    # an empty parameter is the same as none
    status, body = await http(server, "GET", path, token=token, params={"limit": "", "before_seq": ""})
    assert status == 200 and len(body["messages"]) == last


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("limit", "0"),
        ("limit", "101"),
        ("limit", "-1"),
        ("limit", "abc"),
        ("limit", "1.5"),
        ("limit", " 5"),
        ("limit", "5 "),
        ("limit", "+5"),
        ("limit", "0x10"),
        ("limit", "1e2"),
        ("limit", "²"),  # a digit to str.isdigit(), not to int()
        ("limit", "٣"),  # an Arabic-Indic three
        ("limit", "9" * 5000),  # more digits than int() will read
        ("before_seq", "-1"),
        ("before_seq", "x"),
        ("before_seq", str(2**53 + 1)),
        ("after_seq", "-5"),
        ("after_seq", "true"),
        ("after_seq", "null"),
    ],
    ids=lambda v: v[:20],
)
async def test_bad_paging_parameters_are_400(server, param, value):
    token, _ = await token_for(server, "xh.li")
    room = await room_of(server, token, "星河")
    status, body = await http(server, "GET", f"/api/rooms/{room['id']}/messages", token=token, params={param: value})
    assert_error(status, body, 400, "invalid_payload")
    assert body["error"]["message"].startswith(f"{param}:"), body


async def test_members_of_a_room(server):
    token, _ = await token_for(server, "xh.li")
    room = await room_of(server, token, "星河")
    status, body = await http(server, "GET", f"/api/rooms/{room['id']}/members", token=token)
    assert status == 200 and body["ok"] is True
    names = {m["user"]["name"]: m["role"] for m in body["members"]}
    assert names["李娜"] == "client_contact" and names["王晓明"] == "account_manager"
    for member in body["members"]:
        assert set(member["user"]) == {"id", "name", "org", "kind"}, member  # no usernames, roles, emails
        assert isinstance(member["online"], bool)


@pytest.mark.parametrize("route", ["messages", "members"])
async def test_a_room_the_user_is_not_in_answers_exactly_like_no_room(server, route):
    insider, _ = await token_for(server, "xh.li")
    room = await room_of(server, insider, "星河")
    outsider, _ = await token_for(server, "rf.zhou")
    not_mine = await http(server, "GET", f"/api/rooms/{room['id']}/{route}", token=outsider)
    nowhere = await http(server, "GET", f"/api/rooms/r_0123456789abcdef/{route}", token=outsider)
    assert not_mine == nowhere == (404, ROOM_NOT_FOUND)
    # the same with paging parameters
    not_mine = await http(server, "GET", f"/api/rooms/{room['id']}/{route}", token=outsider, params={"limit": "1"})
    assert not_mine == (404, ROOM_NOT_FOUND)


async def test_clients_never_get_internal_notes_over_rest(server, clients):
    staff = await clients(server, "am.wang")
    room_id = await room_id_by_title(staff, "星河")
    note = await staff.call(
        "send_message",
        {"room_id": room_id, "text": "内部：该客户授信额度紧张", "client_msg_id": uuid.uuid4().hex, "internal": True},
    )
    assert note["ok"] is True
    client_token, _ = await token_for(server, "xh.li")
    staff_token, _ = await token_for(server, "ss.liu")
    _, seen_by_client = await http(server, "GET", f"/api/rooms/{room_id}/messages", token=client_token)
    _, seen_by_staff = await http(server, "GET", f"/api/rooms/{room_id}/messages", token=staff_token)
    assert note["message"]["id"] in [m["id"] for m in seen_by_staff["messages"]]
    assert note["message"]["id"] not in [m["id"] for m in seen_by_client["messages"]]
    _, rooms = await http(server, "GET", "/api/rooms", token=client_token)
    assert "授信额度" not in json.dumps(rooms, ensure_ascii=False)


async def test_a_client_of_another_company_learns_nothing_about_the_room(server, clients):
    """Every route, asked by 瑞丰's client admin, is silent about 星河's room: no id, no title, no text, no people."""
    xinghe = await clients(server, "xh.li")
    room_id = await room_id_by_title(xinghe, "星河")
    secret = "星河的保密报价 8,888,888 元"
    await xinghe.call("send_message", {"room_id": room_id, "text": secret, "client_msg_id": uuid.uuid4().hex})
    token, _ = await token_for(server, "rf.zhou")
    answers = []
    for method, path in [
        ("GET", "/api/me"),
        ("GET", "/api/rooms"),
        ("GET", f"/api/rooms/{room_id}/messages"),
        ("GET", f"/api/rooms/{room_id}/members"),
        ("GET", "/api/admin/users"),
        ("GET", "/api/admin/projects"),
        ("GET", f"/api/admin/audit?room_id={room_id}"),
    ]:
        status, body = await http(server, method, path, token=token)
        answers.append((path, status, body))
    text = json.dumps([body for _, _, body in answers], ensure_ascii=False)
    for leak in (room_id, "星河", secret, "李娜", "xh.li", xinghe.user_id):
        assert leak not in text, (leak, answers)
    statuses = {path.split("?")[0]: status for path, status, _ in answers}
    assert statuses == {
        "/api/me": 200,
        "/api/rooms": 200,
        f"/api/rooms/{room_id}/messages": 404,
        f"/api/rooms/{room_id}/members": 404,
        "/api/admin/users": 403,
        "/api/admin/projects": 403,
        "/api/admin/audit": 403,
    }
