"""A client of another company learns nothing about a room, project, member, message or expert session that is
not theirs: every socket event and REST route answers as if it did not exist, and no live event carries it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import RunningServer, ServerFactory, room_id_by_title
from tests.platform.helpers import People, rest, token_of

MISSING_ROOM = "r_0000000000000000"
MISSING_MESSAGE = "m_0000000000000000"
SECRET_TEXT = "星河的付款计划：下月初付清尾款"


@pytest.fixture
async def server(server_factory: ServerFactory) -> RunningServer:
    """Rate limits out of the way: these tests probe many events in a row on purpose."""
    srv: RunningServer = await server_factory(rate_send_burst=1000, rate_events_burst=1000)
    return srv


@pytest.fixture
async def people(server: RunningServer) -> AsyncIterator[People]:
    pool = People(server)
    yield pool
    await pool.close()


def cid() -> str:
    return uuid.uuid4().hex


async def test_every_socket_event_answers_for_another_companys_things_as_for_nothing(server, people: People):
    wang, li, chen = [await people.connect(n) for n in ("am.wang", "xh.li", "se.chen")]
    zhou = await people.connect("rf.zhou")  # 瑞丰物流: not in anything of 星河's
    xinghe_room = await room_id_by_title(wang, "星河")
    ruifeng_room = await room_id_by_title(zhou, "瑞丰")
    secret = (await wang.call("send_message", {"room_id": xinghe_room, "text": SECRET_TEXT, "client_msg_id": cid()}))[
        "message"
    ]
    session = (await li.call("request_expert", {"product": "银企直连", "text": "星河的问题"}))["session"]
    assert session["status"] == "active"
    await chen.call("close_session", {"room_id": session["room_id"]})
    expert_room = session["room_id"]

    def probes(room: str, message: str) -> list[tuple[str, dict[str, Any]]]:
        return [
            ("get_history", {"room_id": room}),
            ("get_history", {"room_id": room, "after_seq": 0}),
            ("get_members", {"room_id": room}),
            ("mark_read", {"room_id": room, "seq": 1}),
            ("set_typing", {"room_id": room, "typing": True}),
            ("send_message", {"room_id": room, "text": "你好", "client_msg_id": "probe-1"}),
            ("send_message", {"room_id": ruifeng_room, "text": "回复", "client_msg_id": cid(), "reply_to": message}),
            ("edit_message", {"message_id": message, "text": "改掉"}),
            ("delete_message", {"message_id": message}),
            ("get_expert_session", {"room_id": room}),
            ("transfer_session", {"room_id": room, "product": "司库"}),
            ("close_session", {"room_id": room}),
            ("rate_session", {"room_id": room, "rating": 1}),
        ]

    for room in (xinghe_room, expert_room):
        real = probes(room, secret["id"])
        fake = probes(MISSING_ROOM, MISSING_MESSAGE)
        for (event, payload), (_, missing_payload) in zip(real, fake, strict=True):
            theirs = await zhou.call(event, payload)
            nothing = await zhou.call(event, missing_payload)
            assert theirs["ok"] is False, (event, theirs)
            assert theirs == nothing, (event, theirs, nothing)
            assert theirs["error"]["code"] in ("not_found", "forbidden"), (event, theirs)

    # Nothing was changed by any of it.
    history = await wang.call("get_history", {"room_id": xinghe_room, "limit": 1})
    assert history["messages"][-1] == secret
    stored = await server.services.store.get_expert_session(expert_room)
    assert stored is not None and stored.rating is None
    assert await server.services.store.get_membership(xinghe_room, zhou.user_id) is None
    assert all(r["id"] not in (xinghe_room, expert_room) for r in (await zhou.call("list_rooms"))["rooms"])
    assert (await zhou.call("list_projects"))["error"]["code"] == "forbidden"
    assert (await zhou.call("get_expert_console"))["error"]["code"] == "forbidden"
    asked_for_other = await zhou.call("request_expert", {"product": "司库", "text": "x", "for_client_id": li.user_id})
    asked_for_nobody = await zhou.call(
        "request_expert", {"product": "司库", "text": "x", "for_client_id": "u_0000000000000000"}
    )
    assert asked_for_other == asked_for_nobody and asked_for_other["error"]["code"] == "forbidden"


async def test_every_rest_route_answers_for_another_companys_room_as_for_nothing(server, people: People):
    wang = await people.connect("am.wang")
    xinghe_room = await room_id_by_title(wang, "星河")
    token = await token_of(server, "rf.zhou")

    for path in ("/api/rooms/{}/messages", "/api/rooms/{}/messages?after_seq=0&limit=5", "/api/rooms/{}/members"):
        theirs = await rest(server, "GET", path.format(xinghe_room), token=token)
        nothing = await rest(server, "GET", path.format(MISSING_ROOM), token=token)
        assert theirs[0] == 404 and theirs == nothing, (path, theirs, nothing)

    status, body = await rest(server, "GET", "/api/rooms", token=token)
    assert status == 200 and xinghe_room not in repr(body) and "星河" not in repr(body)
    status, body = await rest(server, "GET", "/api/me", token=token)
    assert status == 200 and body["user"]["org"] == "瑞丰物流股份有限公司"
    for method, path in (
        ("GET", "/api/admin/users"),
        ("GET", "/api/admin/projects"),
        ("GET", "/api/admin/audit"),
        ("GET", f"/api/admin/audit?room_id={xinghe_room}"),
        ("PATCH", "/api/admin/users/u_0000000000000000"),
    ):
        status, body = await rest(server, method, path, token=token, json={} if method == "PATCH" else None)
        assert (status, body["error"]["code"]) == (403, "forbidden"), (path, body)
        assert "星河" not in repr(body)


async def test_no_live_event_about_another_company_reaches_a_client(server, people: People):
    zhou = await people.connect("rf.zhou")
    rf_wu = await people.connect("rf.wu")
    wang, liu, li, sun, chen = [await people.connect(n) for n in ("am.wang", "ss.liu", "xh.li", "xh.sun", "se.chen")]
    xinghe_room = await room_id_by_title(wang, "星河")

    sent = (await li.call("send_message", {"room_id": xinghe_room, "text": SECRET_TEXT, "client_msg_id": cid()}))[
        "message"
    ]
    await wang.call("set_typing", {"room_id": xinghe_room, "typing": True})
    await sun.call("mark_read", {"room_id": xinghe_room, "seq": sent["seq"]})
    await li.call("edit_message", {"message_id": sent["id"], "text": SECRET_TEXT + "（更正）"})
    await liu.call(
        "send_message",
        {"room_id": xinghe_room, "text": "内部：" + SECRET_TEXT, "client_msg_id": cid(), "internal": True},
    )
    await li.call("delete_message", {"message_id": sent["id"]})
    session = (await li.call("request_expert", {"product": "银企直连", "text": "星河的专家问题"}))["session"]
    await chen.call("close_session", {"room_id": session["room_id"]})
    await sun.disconnect()  # presence of a 星河 member
    await wang.wait_for("presence", lambda p: p["online"] is False)
    await chen.wait_for("message", lambda m: "会话已结束" in m["text"])
    await asyncio.sleep(0.2)

    forbidden = (xinghe_room, session["room_id"], sent["id"], li.user_id, sun.user_id, "星河", "李娜", "孙浩")
    for outsider in (zhou, rf_wu):
        seen = repr(outsider.received)
        assert not [word for word in forbidden if word in seen], outsider.received
