"""Internal notes: staff write them in a shared room; staff read them; a client never receives one by any path
— live events, history over Socket.IO or REST, the room list's last message and unread count, replies."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import ChatClient, RunningServer, room_id_by_title
from tests.platform.helpers import People, rest, token_of

NOTE = "内部：该客户上季度有逾期，审批从严"


@pytest.fixture
async def people(server: RunningServer) -> AsyncIterator[People]:
    pool = People(server)
    yield pool
    await pool.close()


def cid() -> str:
    return uuid.uuid4().hex


async def say(client: ChatClient, room_id: str, text: str, **extra: Any) -> dict[str, Any]:
    ack = await client.call("send_message", {"room_id": room_id, "text": text, "client_msg_id": cid(), **extra})
    assert ack["ok"], ack
    message: dict[str, Any] = ack["message"]
    return message


def mentions_note(value: Any, note: dict[str, Any]) -> bool:
    """Whether anything in `value` carries the note's text or id."""
    return NOTE in repr(value) or note["id"] in repr(value)


async def test_a_note_reaches_staff_live_and_never_a_client(server, people: People):
    wang, liu, li, sun = [await people.connect(n) for n in ("am.wang", "ss.liu", "xh.li", "xh.sun")]
    room_id = await room_id_by_title(wang, "星河")

    note = await say(wang, room_id, NOTE, internal=True)
    assert note["internal"] is True

    got = await liu.wait_for("message", lambda m: m["id"] == note["id"])
    assert got == note
    public = await say(wang, room_id, "明天上午十点联调")
    for client in (li, sun):
        await client.wait_for("message", lambda m: m["id"] == public["id"])
        assert [m["id"] for m in client.events("message")] == [public["id"]]


async def test_a_note_edited_or_deleted_is_told_to_staff_only(server, people: People):
    wang, liu, li = [await people.connect(n) for n in ("am.wang", "ss.liu", "xh.li")]
    room_id = await room_id_by_title(wang, "星河")
    note = await say(wang, room_id, NOTE, internal=True)

    edited = await wang.call("edit_message", {"message_id": note["id"], "text": NOTE + "（已核实）"})
    deleted = await wang.call("delete_message", {"message_id": note["id"]})
    assert edited["ok"] and deleted["ok"]

    await liu.wait_for("message_edited", lambda m: m["id"] == note["id"] and m["internal"])
    await liu.wait_for("message_deleted", lambda m: m["id"] == note["id"] and m["internal"])
    marker = await say(wang, room_id, "公开消息")
    await li.wait_for("message", lambda m: m["id"] == marker["id"])
    assert li.events("message_edited") == [] and li.events("message_deleted") == []
    assert not mentions_note(li.received, note)


async def test_history_over_socket_and_rest_hides_notes_from_clients_and_pages_over_the_rest(server, people: People):
    wang, li = await people.connect("am.wang"), await people.connect("xh.li")
    room_id = await room_id_by_title(wang, "星河")
    before = await say(wang, room_id, "公开一")
    note = await say(wang, room_id, NOTE, internal=True)
    after = await say(wang, room_id, "公开二")
    client_token, staff_token = await token_of(server, "xh.li"), await token_of(server, "am.wang")

    newest = await li.call("get_history", {"room_id": room_id, "limit": 2})
    assert [m["id"] for m in newest["messages"]] == [before["id"], after["id"]]
    assert newest["has_more"] is True
    caught_up = await li.call("get_history", {"room_id": room_id, "after_seq": before["seq"]})
    assert [m["id"] for m in caught_up["messages"]] == [after["id"]] and caught_up["has_more"] is False
    back = await li.call("get_history", {"room_id": room_id, "before_seq": after["seq"], "limit": 1})
    assert [m["id"] for m in back["messages"]] == [before["id"]]
    status, page = await rest(server, "GET", f"/api/rooms/{room_id}/messages?limit=100", token=client_token)
    assert status == 200 and not mentions_note(page, note)
    status, page = await rest(
        server, "GET", f"/api/rooms/{room_id}/messages?after_seq={before['seq']}", token=client_token
    )
    assert [m["id"] for m in page["messages"]] == [after["id"]]

    staff_view = await wang.call("get_history", {"room_id": room_id, "limit": 3})
    assert [m["id"] for m in staff_view["messages"]] == [before["id"], note["id"], after["id"]]
    status, page = await rest(server, "GET", f"/api/rooms/{room_id}/messages?limit=2", token=staff_token)
    assert [m["id"] for m in page["messages"]] == [note["id"], after["id"]]


async def test_the_room_list_neither_shows_nor_counts_notes_for_clients(server, people: People):
    wang, li, liu = [await people.connect(n) for n in ("am.wang", "xh.li", "ss.liu")]
    room_id = await room_id_by_title(wang, "星河")
    for member in (li, liu):
        last = (await member.call("get_history", {"room_id": room_id, "limit": 1}))["messages"][-1]
        await member.call("mark_read", {"room_id": room_id, "seq": last["seq"]})
    public = await say(wang, room_id, "请查收测试报告")
    note = await say(wang, room_id, NOTE, internal=True)

    def row(ack: dict[str, Any]) -> dict[str, Any]:
        found: dict[str, Any] = next(r for r in ack["rooms"] if r["id"] == room_id)
        return found

    mine = row(await li.call("list_rooms"))
    assert mine["last_message"]["id"] == public["id"] and mine["unread"] == 1
    status, body = await rest(server, "GET", "/api/rooms", token=await token_of(server, "xh.li"))
    assert status == 200 and not mentions_note(body, note)
    assert row(body)["unread"] == 1

    staff = row(await liu.call("list_rooms"))
    assert staff["last_message"]["id"] == note["id"] and staff["unread"] == 2

    # Only notes since the client last read: nothing unread, and the last message stays the public one.
    await li.call("mark_read", {"room_id": room_id, "seq": public["seq"]})
    await say(wang, room_id, NOTE + "二", internal=True)
    mine = row(await li.call("list_rooms"))
    assert mine["unread"] == 0 and mine["last_message"]["id"] == public["id"]


async def test_clients_cannot_write_notes_nor_touch_or_reply_to_one(server, people: People):
    wang, li = await people.connect("am.wang"), await people.connect("xh.li")
    room_id = await room_id_by_title(wang, "星河")
    note = await say(wang, room_id, NOTE, internal=True)
    last_seq = (await wang.call("get_history", {"room_id": room_id, "limit": 1}))["messages"][-1]["seq"]

    refused = await li.call(
        "send_message", {"room_id": room_id, "text": "我也想写内部备注", "client_msg_id": cid(), "internal": True}
    )
    assert refused["ok"] is False and refused["error"]["code"] == "forbidden"
    missing = "m_0000000000000000"
    for event, payload in (
        ("send_message", {"room_id": room_id, "text": "回复", "client_msg_id": cid(), "reply_to": "{id}"}),
        ("edit_message", {"message_id": "{id}", "text": "改掉"}),
        ("delete_message", {"message_id": "{id}"}),
    ):

        def fill(value: Any, message_id: str) -> Any:
            return message_id if value == "{id}" else value

        on_note = await li.call(event, {k: fill(v, note["id"]) for k, v in payload.items()})
        on_nothing = await li.call(event, {k: fill(v, missing) for k, v in payload.items()})
        assert on_note["ok"] is False and on_note == on_nothing, event  # the same answer as for no such message

    assert (await wang.call("get_history", {"room_id": room_id, "limit": 1}))["messages"][-1]["seq"] == last_seq
    assert (await server.services.store.get_message(note["id"])).text == NOTE  # type: ignore[union-attr]


async def test_staff_read_notes_in_history_and_reply_to_them_internally(server, people: People):
    wang, liu, li = [await people.connect(n) for n in ("am.wang", "ss.liu", "xh.li")]
    room_id = await room_id_by_title(wang, "星河")
    note = await say(wang, room_id, NOTE, internal=True)
    reply = await say(liu, room_id, "收到，我会注意", internal=True, reply_to=note["id"])
    assert reply["reply_to"] == note["id"]
    history = await liu.call("get_history", {"room_id": room_id, "limit": 2})
    assert [m["id"] for m in history["messages"]] == [note["id"], reply["id"]]
    await asyncio.sleep(0.1)
    assert not mentions_note(li.received, note)


async def test_a_public_reply_to_a_note_does_not_show_the_client_the_note(server, people: People):
    wang, li = await people.connect("am.wang"), await people.connect("xh.li")
    room_id = await room_id_by_title(wang, "星河")
    note = await say(wang, room_id, NOTE, internal=True)
    reply = await say(wang, room_id, "好的，按流程办", reply_to=note["id"])
    await li.wait_for("message", lambda m: m["id"] == reply["id"])
    history = await li.call("get_history", {"room_id": room_id, "limit": 5})
    assert not mentions_note(li.received, note)
    assert not mentions_note(history, note)


async def test_notes_in_an_expert_room_stay_between_the_staff(server, people: People):
    chen = await people.connect("se.chen")
    wang = await people.connect("am.wang")
    li = await people.connect("xh.li")
    ack = await wang.call(
        "request_expert", {"product": "银企直连", "text": "李总要问报文格式", "for_client_id": li.user_id}
    )
    room_id = ack["session"]["room_id"]
    note = await say(chen, room_id, NOTE, internal=True)
    await wang.wait_for("message", lambda m: m["id"] == note["id"])
    public = await say(chen, room_id, "李总您好")
    await li.wait_for("message", lambda m: m["id"] == public["id"])
    assert not mentions_note(li.received, note)
    assert not mentions_note(await li.call("get_history", {"room_id": room_id}), note)
    assert not mentions_note(await li.call("list_rooms"), note)
