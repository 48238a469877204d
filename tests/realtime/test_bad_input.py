"""Bad input over Socket.IO: every bad event gets a clear error ack and changes nothing.

"Changes nothing" is checked the way a user would notice it: after the bad event, a good message
sent by someone else gets the very next `seq` (so nothing was stored in between), it is the first
room event the other members see (so nobody was told anything), and the history is as it was.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest

from chatserver.actions import rooms
from chatserver.realtime.namespace import ChatNamespace
from tests.api.helpers import token_for
from tests.conftest import ChatClient, RunningServer, room_id_by_title

# events that tell room members something happened in a room
ROOM_EVENTS = ("message", "message_edited", "message_deleted", "typing", "read", "room_added", "room_removed")


def cid() -> str:
    return uuid.uuid4().hex


def assert_error(ack: Any, code: str) -> dict[str, Any]:
    """The ack is exactly `{ok: false, error: {code, message}}` with this code and a readable message."""
    assert isinstance(ack, dict), ack
    assert ack.get("ok") is False, ack
    assert set(ack) == {"ok", "error"}, ack
    error = ack["error"]
    assert set(error) == {"code", "message"}, ack
    assert error["code"] == code, ack
    assert isinstance(error["message"], str) and error["message"].strip(), ack
    return dict(error)


@dataclass
class Scene:
    """A room with a sender (who will misbehave) and watchers (who must notice nothing)."""

    server: RunningServer
    sender: ChatClient
    watchers: list[ChatClient]
    room_id: str
    last_seq: int
    history: list[dict[str, Any]]
    sender_in_room: bool
    marks: dict[int, int] = field(default_factory=dict)

    def mark(self) -> None:
        for c in (self.sender, *self.watchers):
            self.marks[id(c)] = len(c.received)

    def room_events(self, client: ChatClient) -> list[tuple[str, Any]]:
        return [(n, d) for n, d in client.received[self.marks[id(client)] :] if n in ROOM_EVENTS]

    def send(self, **fields: Any) -> dict[str, Any]:
        """A good send_message payload, with `fields` changed."""
        return {"room_id": self.room_id, "text": "你好", "client_msg_id": cid(), **fields}

    async def assert_unchanged(self, *, sender_connected: bool = True) -> None:
        room = await self.server.services.store.get_room(self.room_id)
        assert room is not None and room.last_seq == self.last_seq, "something was stored"
        # A sentinel from a watcher: the next seq, and the first room event anyone sees.
        sentinel = await self.watchers[0].call(
            "send_message", {"room_id": self.room_id, "text": "哨兵", "client_msg_id": cid()}
        )
        assert sentinel["ok"] is True, sentinel
        assert sentinel["message"]["seq"] == self.last_seq + 1
        listening = [self.sender] if sender_connected and self.sender_in_room else []
        for client in (*listening, *self.watchers):
            await client.wait_for("message", lambda m: m["id"] == sentinel["message"]["id"])
            assert self.room_events(client) == [("message", sentinel["message"])], client.user_id
        if sender_connected and not self.sender_in_room:
            await self.sender.call("list_rooms")  # a round trip: anything sent to it before has arrived
            assert self.room_events(self.sender) == []
        history = await self.watchers[0].call("get_history", {"room_id": self.room_id, "limit": 100})
        assert history["messages"][:-1] == self.history, "the history changed"


async def make_scene(
    server: RunningServer, clients: Any, sender: str = "am.wang", watchers: tuple[str, ...] = ("xh.sun", "ss.liu")
) -> Scene:
    s = await clients(server, sender)
    ws = [await clients(server, w) for w in watchers]
    room_id = await room_id_by_title(ws[0], "星河")
    history = (await ws[0].call("get_history", {"room_id": room_id, "limit": 100}))["messages"]
    room = await server.services.store.get_room(room_id)
    assert room is not None
    in_room = room_id in [r["id"] for r in (await s.call("list_rooms"))["rooms"]]
    scene = Scene(server, s, ws, room_id, room.last_seq, history, in_room)
    scene.mark()
    return scene


# send_message ------------------------------------------------------------------------------------

NOT_A_STRING = [123, None, {"a": 1}, {"$ne": None}, ["x"], True, 1.5]


@pytest.mark.parametrize(
    ("fields", "code", "where"),
    [
        *[({"room_id": v}, "invalid_payload", "room_id") for v in NOT_A_STRING],
        *[({"text": v}, "invalid_payload", "text") for v in NOT_A_STRING],
        *[({"client_msg_id": v}, "invalid_payload", "client_msg_id") for v in NOT_A_STRING],
        ({"client_msg_id": ""}, "invalid_payload", "client_msg_id"),
        ({"client_msg_id": "c" * 65}, "invalid_payload", "client_msg_id"),
        ({"room_id": ""}, "invalid_payload", "room_id"),
        ({"reply_to": 7}, "invalid_payload", "reply_to"),
        ({"reply_to": {"$ne": None}}, "invalid_payload", "reply_to"),
        ({"internal": "true"}, "invalid_payload", "internal"),
        ({"internal": 1}, "invalid_payload", "internal"),
        # unknown fields, including ones that try to set what only the server decides
        ({"sender": {"id": "u_x", "name": "行长"}}, "invalid_payload", "sender"),
        ({"seq": 1}, "invalid_payload", "seq"),
        ({"created_at": "2020-01-01T00:00:00Z"}, "invalid_payload", "created_at"),
        ({"$where": "1"}, "invalid_payload", "$where"),
        ({"text": ""}, "empty_text", None),
        ({"text": "   \n\t  "}, "empty_text", None),
        ({"text": "\u3000\u3000"}, "empty_text", None),  # ideographic spaces
        ({"text": "\u200b" * 50}, "empty_text", None),  # zero-width spaces only
        ({"text": "  \u200b\u2060 \ufeff "}, "empty_text", None),  # zero-width joiner-likes and spaces
        ({"text": "\u2800\u3164"}, "empty_text", None),  # braille blank, hangul filler
        ({"text": "\u202e\u202d"}, "invalid_payload", "text"),  # direction overrides only
        ({"text": "\u034f\ufe0f\U000e0100"}, "empty_text", None),  # grapheme joiner, variation selectors
        ({"text": "\u0300\u0489"}, "empty_text", None),  # combining marks with nothing to combine with
        ({"text": "\ue000\ufffe"}, "empty_text", None),  # private use, noncharacter
        ({"text": "付款给\u202e123\u202c"}, "invalid_payload", "text"),  # a direction override
        ({"text": "\x00"}, "invalid_payload", "text"),  # control characters
        ({"text": "账户\x1b[31m余额"}, "invalid_payload", "text"),
        ({"text": "a" * 10_001}, "text_too_long", None),
        ({"text": "abc\ud800def"}, "invalid_payload", None),  # a lone surrogate
        ({"room_id": "r_doesnotexist"}, "not_found", None),
        ({"reply_to": "m_doesnotexist"}, "not_found", None),
    ],
)
async def test_bad_send_message_fields(server, clients, fields, code, where):
    scene = await make_scene(server, clients)
    error = assert_error(await scene.sender.call("send_message", scene.send(**fields)), code)
    if where:
        assert error["message"].startswith(f"{where}:"), error
    await scene.assert_unchanged()


@pytest.mark.parametrize("missing", ["room_id", "text", "client_msg_id"])
async def test_send_message_missing_field(server, clients, missing):
    scene = await make_scene(server, clients)
    payload = scene.send()
    del payload[missing]
    error = assert_error(await scene.sender.call("send_message", payload), "invalid_payload")
    assert error["message"].startswith(f"{missing}:"), error
    await scene.assert_unchanged()


async def test_text_at_the_char_limit_is_accepted_and_one_more_is_refused(server, clients):
    scene = await make_scene(server, clients)
    ok = await scene.sender.call("send_message", scene.send(text="长" * 10_000))
    assert ok["ok"] is True and len(ok["message"]["text"]) == 10_000
    assert_error(await scene.sender.call("send_message", scene.send(text="长" * 10_001)), "text_too_long")
    room = await server.services.store.get_room(scene.room_id)
    assert room is not None and room.last_seq == scene.last_seq + 1


async def test_text_limits_count_characters_and_utf8_bytes(server_factory, clients):
    server = await server_factory(max_text_chars=100, max_text_bytes=120)
    scene = await make_scene(server, clients)
    # 41 characters but 123 bytes: under the character limit, over the byte limit
    error = assert_error(await scene.sender.call("send_message", scene.send(text="汉" * 41)), "text_too_long")
    assert "120" in error["message"], error
    error = assert_error(await scene.sender.call("send_message", scene.send(text="a" * 101)), "text_too_long")
    assert "100" in error["message"], error
    # edits are held to the same limits
    mine = scene.history[0]["id"]  # am.wang wrote the first demo message
    assert_error(await scene.sender.call("edit_message", {"message_id": mine, "text": "汉" * 41}), "text_too_long")
    await scene.assert_unchanged()
    # and exactly at both limits is fine
    ok = await scene.sender.call("send_message", scene.send(text="汉" * 40))
    assert ok["ok"] is True, ok
    ok = await scene.sender.call("send_message", scene.send(text="a" * 100))
    assert ok["ok"] is True, ok


async def test_room_the_user_is_not_in_looks_exactly_like_no_room(server, clients):
    scene = await make_scene(server, clients, sender="rf.zhou")
    not_mine = await scene.sender.call("send_message", scene.send())
    nowhere = await scene.sender.call("send_message", scene.send(room_id="r_0123456789abcdef"))
    assert_error(not_mine, "not_found")
    assert not_mine == nowhere
    await scene.assert_unchanged()


async def test_reply_to_a_message_of_another_room_is_not_found(server, clients):
    scene = await make_scene(server, clients)
    other_room = await room_id_by_title(scene.sender, "瑞丰")
    other = await scene.sender.call("get_history", {"room_id": other_room, "limit": 1})
    other_id = other["messages"][0]["id"]
    assert_error(await scene.sender.call("send_message", scene.send(reply_to=other_id)), "not_found")
    await scene.assert_unchanged()


async def test_client_user_cannot_write_internal_notes(server, clients):
    scene = await make_scene(server, clients, sender="xh.li")
    error = assert_error(await scene.sender.call("send_message", scene.send(internal=True)), "forbidden")
    assert "internal" in error["message"]
    await scene.assert_unchanged()


async def test_client_cannot_reply_to_an_internal_note_it_cannot_see(server, clients):
    scene = await make_scene(server, clients, sender="xh.li", watchers=("am.wang",))
    staff = scene.watchers[0]
    note = await staff.call("send_message", scene.send(text="内部备注：客户证书有问题", internal=True))
    assert note["ok"] is True
    await staff.wait_for("message", lambda m: m["id"] == note["message"]["id"])
    scene.last_seq += 1
    scene.history.append(note["message"])
    scene.mark()
    assert_error(await scene.sender.call("send_message", scene.send(reply_to=note["message"]["id"])), "not_found")
    await scene.assert_unchanged()


@pytest.mark.parametrize("payload", ["hello", ["room", "text"], 42, True, 0, ""], ids=repr)
async def test_payload_that_is_not_an_object(server, clients, payload):
    scene = await make_scene(server, clients)
    error = assert_error(await scene.sender.call("send_message", payload), "invalid_payload")
    assert "object" in error["message"]
    await scene.assert_unchanged()


async def test_no_payload_at_all(server, clients):
    scene = await make_scene(server, clients)
    ack = await scene.sender.sio.call("send_message", timeout=5)
    assert_error(ack, "invalid_payload")
    await scene.assert_unchanged()


async def test_two_payload_arguments(server, clients):
    scene = await make_scene(server, clients)
    ack = await scene.sender.sio.call("send_message", (scene.send(), scene.send()), timeout=5)
    assert_error(ack, "invalid_payload")
    await scene.assert_unchanged()


@pytest.mark.parametrize(
    "make_payload",
    [
        lambda s: s.send(text=b"\x89PNG\r\n\x1a\n"),
        lambda s: s.send(attachment=b"\x00\x01"),
        lambda s: b'{"room_id": "x"}',
        lambda s: s.send(text=["caption", b"\xff\xd8\xff"]),
    ],
    ids=["binary text", "binary extra field", "binary payload", "binary inside a list"],
)
async def test_binary_attachments_are_refused(server, clients, make_payload):
    scene = await make_scene(server, clients)
    error = assert_error(await scene.sender.call("send_message", make_payload(scene)), "invalid_payload")
    assert "binary" in error["message"], error
    await scene.assert_unchanged()


@pytest.mark.parametrize("event", ["send", "sendMessage", "SEND_MESSAGE", "_handle", "drain", "message", "x" * 500])
async def test_unknown_event_names(server, clients, event):
    scene = await make_scene(server, clients)
    error = assert_error(await scene.sender.call(event, scene.send()), "invalid_payload")
    assert "unknown event" in error["message"]
    assert len(error["message"]) < 120
    await scene.assert_unchanged()


@pytest.mark.parametrize("event", ["connect", "disconnect"])
async def test_client_cannot_fire_the_servers_own_connect_and_disconnect_events(server, clients, event):
    """Sent by a client these are just events: they must not re-run sign-in or sign the user out."""
    scene = await make_scene(server, clients, sender="xh.li")
    other_token, _ = await token_for(server, "rf.zhou")
    args = ({"HTTP_HOST": "x"}, {"token": other_token}) if event == "connect" else "client disconnect"
    assert_error(await scene.sender.sio.call(event, args, timeout=5), "invalid_payload")
    # still online, and still xh.li (not rf.zhou, whose token came with the fake connect)
    members = await scene.watchers[0].call("get_members", {"room_id": scene.room_id})
    online = {m["user"]["id"]: m["online"] for m in members["members"]}
    assert online[scene.sender.user_id] is True
    assert server.services.presence.is_online(scene.sender.user_id)
    assert [n for n, _ in scene.watchers[0].received[scene.marks[id(scene.watchers[0])] :] if n == "presence"] == []
    rooms = (await scene.sender.call("list_rooms"))["rooms"]
    assert [r["title"] for r in rooms] == ["星河制造集团有限公司 · 银企直连"]
    await scene.assert_unchanged()


RawSocket = tuple[aiohttp.ClientSession, aiohttp.ClientWebSocketResponse]


async def raw_socket(server: RunningServer, token: str) -> RawSocket:
    """A bare Engine.IO websocket that has joined the default namespace, for frames no client library sends."""
    session = aiohttp.ClientSession()
    ws = await session.ws_connect(server.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket")
    opened = await ws.receive_str()
    assert opened.startswith("0")
    await ws.send_str("40" + json.dumps({"token": token}))
    joined = await ws.receive_str()
    assert joined.startswith("40{"), joined
    return session, ws


async def raw_ack(ws: aiohttp.ClientWebSocketResponse, ack_id: int) -> Any:
    while True:
        frame = await asyncio.wait_for(ws.receive_str(), 5)
        if frame.startswith(f"43{ack_id}["):
            return json.loads(frame[len(f"43{ack_id}") :])[0]


@pytest.mark.parametrize("name", [123, None, {"a": 1}, ["send_message"], True], ids=repr)
async def test_event_name_that_is_not_a_string(server, clients, name):
    scene = await make_scene(server, clients)
    session, ws = await raw_socket(server, (await token_for(server, "am.wang"))[0])
    try:
        await ws.send_str("427" + json.dumps([name, scene.send()]))
        assert_error(await raw_ack(ws, 7), "invalid_payload")
        # the connection is still usable
        await ws.send_str("428" + json.dumps(["list_rooms", {}]))
        assert (await raw_ack(ws, 8))["ok"] is True
    finally:
        await ws.close()
        await session.close()
    await scene.assert_unchanged()


@pytest.mark.parametrize("where", ["room_id", "text", "extra"])
async def test_deeply_nested_payload(server, clients, where):
    scene = await make_scene(server, clients)
    session, ws = await raw_socket(server, (await token_for(server, "am.wang"))[0])
    try:
        payload = {"room_id": scene.room_id, "text": "你好", "client_msg_id": cid()}
        nested = "[" * 900 + "]" * 900
        body = json.dumps(payload)[:-1] + f', "{where}": ' + nested + "}"
        if where != "extra":
            body = json.dumps({k: v for k, v in payload.items() if k != where})[:-1] + f', "{where}": ' + nested + "}"
        await ws.send_str('425["send_message",' + body + "]")
        error = assert_error(await raw_ack(ws, 5), "invalid_payload")
        assert error["message"].startswith(f"{where}:") or "nested" in error["message"], error
    finally:
        await ws.close()
        await session.close()
    await scene.assert_unchanged()


# get_history ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"limit": 0},
        {"limit": 101},
        {"limit": -1},
        {"limit": "5"},
        {"limit": True},
        {"limit": 5.0},
        {"limit": None},
        {"before_seq": -1},
        {"after_seq": -1},
        {"before_seq": "3"},
        {"after_seq": 2.5},
        {"after_seq": False},
        {"before_seq": 2**53 + 1},
        {"after_seq": {"$gt": 0}},
        {"room_id": 5},
        {"room_id": {"$ne": None}},
        {"since": 3},
    ],
    ids=repr,
)
async def test_bad_get_history(server, clients, fields):
    scene = await make_scene(server, clients)
    field_name = next(iter(fields))
    payload = {"room_id": scene.room_id, **fields}
    error = assert_error(await scene.sender.call("get_history", payload), "invalid_payload")
    assert error["message"].startswith(f"{field_name}:"), error


async def test_get_history_without_room_and_for_other_rooms(server, clients):
    outsider = await clients(server, "rf.zhou")
    insider = await clients(server, "xh.li")
    room_id = await room_id_by_title(insider, "星河")
    assert_error(await outsider.call("get_history", {}), "invalid_payload")
    not_mine = await outsider.call("get_history", {"room_id": room_id})
    nowhere = await outsider.call("get_history", {"room_id": "r_nope"})
    assert_error(not_mine, "not_found")
    assert not_mine == nowhere


async def test_get_history_accepts_the_edges_of_the_ranges(server, clients):
    scene = await make_scene(server, clients)
    for fields in ({"limit": 1}, {"limit": 100}, {"after_seq": 0}, {"before_seq": 2**53}):
        ack = await scene.sender.call("get_history", {"room_id": scene.room_id, **fields})
        assert ack["ok"] is True, (fields, ack)


# mark_read and set_typing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        {"seq": -1},
        {"seq": "2"},
        {"seq": True},
        {"seq": None},
        {"seq": 1.0},
        {},
        {"seq": 1, "user_id": "u_someoneelse"},
        {"room_id": 1, "seq": 1},
    ],
    ids=repr,
)
async def test_bad_mark_read(server, clients, payload):
    scene = await make_scene(server, clients)
    before = {r["id"]: r["last_read_seq"] for r in (await scene.sender.call("list_rooms"))["rooms"]}
    assert_error(await scene.sender.call("mark_read", {"room_id": scene.room_id, **payload}), "invalid_payload")
    after = {r["id"]: r["last_read_seq"] for r in (await scene.sender.call("list_rooms"))["rooms"]}
    assert after == before
    await scene.assert_unchanged()


async def test_mark_read_in_a_room_the_user_is_not_in(server, clients):
    scene = await make_scene(server, clients, sender="rf.wu")
    assert_error(await scene.sender.call("mark_read", {"room_id": scene.room_id, "seq": 1}), "not_found")
    await scene.assert_unchanged()


async def test_mark_read_past_the_end_stops_at_the_last_seq_and_never_goes_back(server, clients):
    scene = await make_scene(server, clients)
    ack = await scene.sender.call("mark_read", {"room_id": scene.room_id, "seq": 2**53})
    assert ack == {"ok": True, "room_id": scene.room_id, "last_read_seq": scene.last_seq}
    ack = await scene.sender.call("mark_read", {"room_id": scene.room_id, "seq": 0})
    assert ack["last_read_seq"] == scene.last_seq


@pytest.mark.parametrize(
    "payload",
    [{"typing": "true"}, {"typing": 1}, {"typing": None}, {}, {"typing": True, "user": "u_x"}, {"room_id": ["r"]}],
    ids=repr,
)
async def test_bad_set_typing(server, clients, payload):
    scene = await make_scene(server, clients)
    fields = {"room_id": scene.room_id, **payload}
    assert_error(await scene.sender.call("set_typing", fields), "invalid_payload")
    await scene.assert_unchanged()


async def test_set_typing_in_a_room_the_user_is_not_in(server, clients):
    scene = await make_scene(server, clients, sender="rf.zhou")
    assert_error(await scene.sender.call("set_typing", {"room_id": scene.room_id, "typing": True}), "not_found")
    await scene.assert_unchanged()


# edit_message and delete_message ---------------------------------------------------------------------


async def message_of(scene: Scene, username_name: str) -> dict[str, Any]:
    """The first message in the scene's history written by the person with this display name."""
    return next(m for m in scene.history if m["sender"]["name"] == username_name)


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"text": "改过了", "message_id": 5}, "invalid_payload"),
        ({"text": "改过了", "message_id": {"$ne": None}}, "invalid_payload"),
        ({"text": "改过了", "message_id": None}, "invalid_payload"),
        ({"text": "改过了", "message_id": "DROP"}, "invalid_payload"),
        ({"text": None}, "invalid_payload"),
        ({"text": {"$set": "x"}}, "invalid_payload"),
        ({}, "invalid_payload"),
        ({"text": "改过了", "room_id": "r_x"}, "invalid_payload"),
        ({"text": "改过了", "internal": True}, "invalid_payload"),
        ({"text": ""}, "empty_text"),
        ({"text": "  \n "}, "empty_text"),
        ({"text": "b" * 10_001}, "text_too_long"),
        ({"text": "x\udfffy"}, "invalid_payload"),
        ({"text": "改过了", "message_id": "m_doesnotexist"}, "not_found"),
    ],
    ids=repr,
)
async def test_bad_edit_message(server, clients, payload, code):
    scene = await make_scene(server, clients)
    mine = await message_of(scene, "王晓明")
    fields = {k: v for k, v in {"message_id": mine["id"], **payload}.items() if v != "DROP"}
    assert_error(await scene.sender.call("edit_message", fields), code)
    await scene.assert_unchanged()


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"message_id": 5}, "invalid_payload"),
        ({"message_id": None}, "invalid_payload"),
        ({"message_id": {"$ne": None}}, "invalid_payload"),
        ({"message_id": ""}, "invalid_payload"),
        ({}, "invalid_payload"),
        ({"message_id": "MINE", "hard": True}, "invalid_payload"),
        ({"message_id": "m_doesnotexist"}, "not_found"),
    ],
    ids=repr,
)
async def test_bad_delete_message(server, clients, payload, code):
    scene = await make_scene(server, clients)
    mine = await message_of(scene, "王晓明")
    fields = {k: (mine["id"] if v == "MINE" else v) for k, v in payload.items()}
    assert_error(await scene.sender.call("delete_message", fields), code)
    await scene.assert_unchanged()


@pytest.mark.parametrize("sender", ["xh.li", "ss.liu"])
async def test_editing_or_deleting_someone_elses_message_is_forbidden(server, clients, sender):
    scene = await make_scene(server, clients, sender=sender, watchers=("xh.sun", "am.wang"))
    theirs = await message_of(scene, "王晓明")
    error = assert_error(
        await scene.sender.call("edit_message", {"message_id": theirs["id"], "text": "我改了你的话"}), "forbidden"
    )
    assert "own" in error["message"]
    assert_error(await scene.sender.call("delete_message", {"message_id": theirs["id"]}), "forbidden")
    await scene.assert_unchanged()


async def test_messages_of_a_room_the_user_is_not_in_cannot_be_found(server, clients):
    scene = await make_scene(server, clients, sender="rf.zhou")
    theirs = await message_of(scene, "王晓明")
    edit = await scene.sender.call("edit_message", {"message_id": theirs["id"], "text": "x"})
    edit_nowhere = await scene.sender.call("edit_message", {"message_id": "m_0000000000000000", "text": "x"})
    assert_error(edit, "not_found")
    assert edit == edit_nowhere
    delete = await scene.sender.call("delete_message", {"message_id": theirs["id"]})
    assert_error(delete, "not_found")
    assert delete == await scene.sender.call("delete_message", {"message_id": "m_0000000000000000"})
    await scene.assert_unchanged()


async def test_client_cannot_touch_an_internal_note(server, clients):
    scene = await make_scene(server, clients, sender="xh.li", watchers=("am.wang",))
    staff = scene.watchers[0]
    note = await staff.call("send_message", scene.send(text="内部：先别告诉客户", internal=True))
    await staff.wait_for("message", lambda m: m["id"] == note["message"]["id"])
    scene.last_seq += 1
    scene.history.append(note["message"])
    scene.mark()
    nowhere = await scene.sender.call("delete_message", {"message_id": "m_0000000000000000"})
    assert await scene.sender.call("delete_message", {"message_id": note["message"]["id"]}) == nowhere
    edit = await scene.sender.call("edit_message", {"message_id": note["message"]["id"], "text": "x"})
    assert_error(edit, "not_found")
    await scene.assert_unchanged()


# other events --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "payload"),
    [
        ("list_rooms", {"all": True}),
        ("list_rooms", "everything"),
        ("get_members", {}),
        ("get_members", {"room_id": 9}),
        ("get_members", {"room_id": "r_x", "with_email": True}),
    ],
    ids=repr,
)
async def test_bad_list_rooms_and_get_members(server, clients, event, payload):
    client = await clients(server, "xh.li")
    assert_error(await client.call(event, payload), "invalid_payload")


async def test_get_members_of_a_room_the_user_is_not_in(server, clients):
    insider = await clients(server, "xh.li")
    outsider = await clients(server, "rf.zhou")
    room_id = await room_id_by_title(insider, "星河")
    not_mine = await outsider.call("get_members", {"room_id": room_id})
    assert_error(not_mine, "not_found")
    assert not_mine == await outsider.call("get_members", {"room_id": "r_0000000000000000"})


# limits ----------------------------------------------------------------------------------------------


async def test_oversized_packet_closes_the_connection_and_stores_nothing(server_factory, clients):
    server = await server_factory(max_packet_bytes=2048)
    scene = await make_scene(server, clients)
    small = await scene.sender.call("send_message", scene.send(text="a" * 1000))
    assert small["ok"] is True
    scene.last_seq += 1
    scene.history.append(small["message"])
    for watcher in scene.watchers:
        await watcher.wait_for("message", lambda m: m["id"] == small["message"]["id"])
    scene.mark()

    await scene.sender.sio.emit("send_message", scene.send(text="a" * 3000))
    await scene.sender.wait_for("disconnect")
    assert not scene.sender.sio.connected
    await scene.assert_unchanged(sender_connected=False)


async def test_flooding_sends_is_rate_limited_and_the_limited_message_is_not_stored(server_factory, clients):
    server = await server_factory(rate_send_per_second=0.01, rate_send_burst=3)
    scene = await make_scene(server, clients)
    sent = [await scene.sender.call("send_message", scene.send(text=f"第{i}条")) for i in range(3)]
    assert all(a["ok"] for a in sent), sent
    for watcher in scene.watchers:
        await watcher.wait_for("message", lambda m: m["id"] == sent[-1]["message"]["id"])
    scene.last_seq += 3
    scene.history += [a["message"] for a in sent]
    scene.mark()

    limited = scene.send(text="第4条")
    assert_error(await scene.sender.call("send_message", limited), "rate_limited")
    # edits and deletes share the bucket
    first = sent[0]["message"]["id"]
    assert_error(await scene.sender.call("edit_message", {"message_id": first, "text": "改"}), "rate_limited")
    assert_error(await scene.sender.call("delete_message", {"message_id": first}), "rate_limited")
    # per user, not per socket: a second socket of the same user is limited too
    second = await clients(server, "am.wang")
    assert_error(await second.call("send_message", scene.send(text="换个连接")), "rate_limited")
    await scene.assert_unchanged()
    # reading is not a write: still allowed
    assert (await scene.sender.call("get_history", {"room_id": scene.room_id}))["ok"] is True


async def test_flooding_any_event_is_rate_limited(server_factory, clients):
    server = await server_factory(rate_events_per_second=0.01, rate_events_burst=5)
    client = await clients(server, "xh.li")
    room_id = (await client.call("list_rooms"))["rooms"][0]["id"]
    last_seq = (await server.services.store.get_room(room_id)).last_seq
    acks = [await client.call("get_history", {"room_id": room_id}) for _ in range(6)]
    assert [a["ok"] for a in acks] == [True] * 4 + [False, False]
    assert_error(acks[-1], "rate_limited")
    assert_error(
        await client.call("send_message", {"room_id": room_id, "text": "x", "client_msg_id": cid()}), "rate_limited"
    )
    room = await server.services.store.get_room(room_id)
    assert room is not None and room.last_seq == last_seq


# every event, present and future ----------------------------------------------------------------------

CLIENT_EVENTS = sorted(
    name[3:] for name in dir(ChatNamespace) if name.startswith("on_") and name not in ("on_connect", "on_disconnect")
)


def test_the_protocols_events_are_all_here():
    """The generic test below runs over every handler; make sure it finds them."""
    assert {"send_message", "get_history", "mark_read", "set_typing", "edit_message", "delete_message"} <= set(
        CLIENT_EVENTS
    )


@pytest.mark.parametrize("event", CLIENT_EVENTS)
async def test_every_event_refuses_payloads_that_are_not_objects_or_have_unknown_fields(server, clients, event):
    scene = await make_scene(server, clients)
    for payload in ("text", ["a"], 7, True, {"zz_unknown": 1}, {"zz_unknown": b"\x00"}, b"\x00\x01"):
        ack = await scene.sender.call(event, payload)
        assert_error(ack, "invalid_payload")
    await scene.assert_unchanged()


# a closed room ------------------------------------------------------------------------------------------


async def test_a_read_only_room_refuses_every_write_and_still_reads(server, clients):
    scene = await make_scene(server, clients, sender="am.wang", watchers=("xh.sun",))
    await rooms.set_read_only(server.services, scene.room_id, True)
    await scene.watchers[0].wait_for("room_updated", lambda r: r["id"] == scene.room_id and r["read_only"])
    scene.mark()
    mine = await message_of(scene, "王晓明")
    for event, payload in [
        ("send_message", scene.send()),
        ("send_message", scene.send(internal=True)),
        ("set_typing", {"room_id": scene.room_id, "typing": True}),
        ("edit_message", {"message_id": mine["id"], "text": "归档后修改"}),
        ("delete_message", {"message_id": mine["id"]}),
    ]:
        assert_error(await scene.sender.call(event, payload), "room_read_only")
    history = await scene.sender.call("get_history", {"room_id": scene.room_id, "limit": 100})
    assert history["messages"] == scene.history
    room = await server.services.store.get_room(scene.room_id)
    assert room is not None and room.last_seq == scene.last_seq
    await scene.watchers[0].call("list_rooms")  # a round trip
    assert scene.room_events(scene.watchers[0]) == []
