"""Security rules on the Socket.IO side: who may connect, from where, and what membership lets them hear."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import socketio

from chatserver.actions import rooms
from tests.api.helpers import bad_tokens, forge, http, token_for
from tests.conftest import RunningServer, connect, room_id_by_title


def cid() -> str:
    return uuid.uuid4().hex


async def refused(server: RunningServer, auth: Any, headers: dict[str, str] | None = None) -> list[Any]:
    """Try to connect; assert it fails and nothing stays connected; return what `connect_error` carried."""
    sio = socketio.AsyncClient(reconnection=False)
    errors: list[Any] = []

    @sio.on("connect_error")
    def on_error(data: Any = None) -> None:
        errors.append(data)

    accepted = server.services.metrics.registry.get_sample_value("chat_connections_total")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await sio.connect(server.url, auth=auth, headers=headers or {}, transports=["websocket"], wait_timeout=5)
    assert not sio.connected
    await sio.disconnect()
    assert server.services.metrics.registry.get_sample_value("chat_connections_total") == accepted
    return errors


def assert_unauthorized(errors: list[Any]) -> dict[str, Any]:
    """One `connect_error` whose data (the JS client's `err.data`) is `{code: "unauthorized", message}`."""
    assert len(errors) == 1, errors
    assert set(errors[0]) == {"message", "data"}, errors
    data = errors[0]["data"]
    assert set(data) == {"code", "message"}, errors
    assert data["code"] == "unauthorized", errors
    assert data["message"] and data["message"] == errors[0]["message"], errors
    return dict(data)


# tokens ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "auth",
    [None, {}, {"token": None}, {"token": ""}, {"token": 123}, {"token": ["x"]}, {"token": {"$ne": None}}],
    ids=repr,
)
async def test_connect_without_a_usable_token_is_refused(server, auth):
    assert_unauthorized(await refused(server, auth))


async def test_connect_with_a_token_under_another_key_is_refused(server):
    token, _ = await token_for(server, "xh.li")
    assert_unauthorized(await refused(server, {"jwt": token}))
    assert_unauthorized(await refused(server, {"token": "Bearer " + token}))
    assert_unauthorized(await refused(server, {"token": token + "x" * 5000}))


async def test_forged_token_helper_makes_tokens_the_server_accepts(server):
    """The control for the next test: a token forged with the right secret and claims does connect."""
    _, user_id = await token_for(server, "xh.li")
    client = await connect(server.url, forge(server, user_id))
    try:
        rooms_ack = await client.call("list_rooms")
        assert [r["title"] for r in rooms_ack["rooms"]] == ["星河制造集团有限公司 · 银企直连"]
    finally:
        await client.disconnect()


@pytest.mark.parametrize(
    "what",
    [
        "expired",
        "other secret",
        "alg none",
        "alg HS512",
        "no aud",
        "no iss",
        "no exp",
        "no iat",
        "no sub",
        "wrong aud",
        "wrong iss",
        "unknown user",
        "sub not a string",
        "garbage",
        "three dots",
        "tampered",
    ],
)
async def test_bad_tokens_are_refused_at_connect(server, what):
    _, user_id = await token_for(server, "xh.li")
    token = bad_tokens(server, user_id)[what]
    error = assert_unauthorized(await refused(server, {"token": token}))
    if what == "expired":
        assert "expired" in error["message"]


# disabled users ----------------------------------------------------------------------------------------


async def test_disabling_a_user_disconnects_their_sockets_and_refuses_their_token(server, clients):
    victim_token, victim_id = await token_for(server, "xh.sun")
    first = await connect(server.url, victim_token)
    second = await connect(server.url, victim_token)
    colleague = await clients(server, "xh.li")
    admin_token, _ = await token_for(server, "admin")
    try:
        status, body = await http(
            server, "PATCH", f"/api/admin/users/{victim_id}", token=admin_token, json={"active": False}
        )
        assert status == 200 and body["user"]["active"] is False, body
        await first.wait_for("disconnect")
        await second.wait_for("disconnect")
        await colleague.wait_for("presence", lambda p: p == {"user_id": victim_id, "online": False})
        assert not first.sio.connected and not second.sio.connected

        status, body = await http(server, "GET", "/api/me", token=victim_token)
        assert status == 401 and body["error"]["code"] == "unauthorized", body
        assert_unauthorized(await refused(server, {"token": victim_token}))

        # the colleague's messages no longer reach the disabled user, who is offline in the member list
        room_id = await room_id_by_title(colleague, "星河")
        members = await colleague.call("get_members", {"room_id": room_id})
        assert {m["user"]["id"]: m["online"] for m in members["members"]}[victim_id] is False
    finally:
        await first.disconnect()
        await second.disconnect()


async def test_a_user_disabled_while_connected_cannot_send_even_if_the_disconnect_was_missed(server, clients):
    """Every event checks the user is still active, not only the connect: the socket is closed instead."""
    victim = await clients(server, "xh.sun")
    watcher = await clients(server, "xh.li")
    room_id = await room_id_by_title(victim, "星河")
    last_seq = (await server.services.store.get_room(room_id)).last_seq
    # disable behind the broadcaster's back: straight in the store, so no disconnect is sent
    await server.services.store.update_user(victim.user_id, active=False)
    await victim.sio.emit("send_message", {"room_id": room_id, "text": "还能发吗", "client_msg_id": cid()})
    await victim.wait_for("disconnect")
    assert (await server.services.store.get_room(room_id)).last_seq == last_seq
    await watcher.call("list_rooms")
    assert watcher.events("message") == []


# origin --------------------------------------------------------------------------------------------------


async def test_same_origin_is_accepted_by_default(server):
    token, _ = await token_for(server, "xh.li")
    client = await connect(server.url, token, headers={"Origin": server.url})
    try:
        assert (await client.call("list_rooms"))["ok"] is True
    finally:
        await client.disconnect()


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1:1", "https://127.0.0.1"])
async def test_other_origins_are_refused_by_default(server, origin):
    token, _ = await token_for(server, "xh.li")
    await refused(server, {"token": token}, headers={"Origin": origin})


async def test_configured_origins_are_accepted_and_others_refused(server_factory):
    server = await server_factory(allowed_origins=["https://chat.bank.example"])
    token, _ = await token_for(server, "xh.li")
    client = await connect(server.url, token, headers={"Origin": "https://chat.bank.example"})
    try:
        assert (await client.call("list_rooms"))["ok"] is True
    finally:
        await client.disconnect()
    await refused(server, {"token": token}, headers={"Origin": "https://chat.bank.example.evil.com"})
    await refused(server, {"token": token}, headers={"Origin": "http://chat.bank.example"})


# membership -----------------------------------------------------------------------------------------------


async def test_removed_member_leaves_the_room_at_once(server, clients):
    removed = await clients(server, "xh.sun")
    staying = await clients(server, "xh.li")
    manager = await clients(server, "am.wang")
    room_id = await room_id_by_title(removed, "星河")

    assert await rooms.remove_member(server.services, room_id=room_id, user_id=removed.user_id)
    assert await removed.wait_for("room_removed") == {"room_id": room_id}

    sent = await manager.call("send_message", {"room_id": room_id, "text": "孙浩已调岗", "client_msg_id": cid()})
    await staying.wait_for("message", lambda m: m["id"] == sent["message"]["id"])
    await manager.call("set_typing", {"room_id": room_id, "typing": True})
    await staying.wait_for("typing")
    await removed.call("list_rooms")  # a round trip: anything emitted to it before has arrived
    assert removed.events("message") == [] and removed.events("typing") == []

    not_found = {"ok": False, "error": {"code": "not_found", "message": "room not found"}}
    assert await removed.call("get_history", {"room_id": room_id}) == not_found
    send = await removed.call("send_message", {"room_id": room_id, "text": "我还在吗", "client_msg_id": cid()})
    assert send == not_found
    assert (await removed.call("list_rooms"))["rooms"] == []
    token, _ = await token_for(server, "xh.sun")
    status, body = await http(server, "GET", f"/api/rooms/{room_id}/messages", token=token)
    assert (status, body) == (404, not_found)


async def test_added_member_gets_room_added_and_then_the_rooms_messages(server, clients):
    newcomer = await clients(server, "ss.liu")
    manager = await clients(server, "am.wang")
    room_id = await room_id_by_title(manager, "瑞丰")
    assert room_id not in [r["id"] for r in (await newcomer.call("list_rooms"))["rooms"]]

    assert await rooms.add_member(server.services, room_id=room_id, user_id=newcomer.user_id, role="service_specialist")
    added = await newcomer.wait_for("room_added")
    assert added["id"] == room_id and added["my_role"] == "service_specialist"
    assert added["title"] == "瑞丰物流股份有限公司 · 司库系统"

    sent = await manager.call("send_message", {"room_id": room_id, "text": "欢迎刘婷加入", "client_msg_id": cid()})
    assert await newcomer.wait_for("message", lambda m: m["id"] == sent["message"]["id"]) == sent["message"]
    reply = await newcomer.call("send_message", {"room_id": room_id, "text": "大家好", "client_msg_id": cid()})
    assert reply["ok"] is True
    await manager.wait_for("message", lambda m: m["id"] == reply["message"]["id"])
    # and, as staff, internal notes of the room too
    note = await manager.call(
        "send_message", {"room_id": room_id, "text": "内部：注意报价", "client_msg_id": cid(), "internal": True}
    )
    await newcomer.wait_for("message", lambda m: m["id"] == note["message"]["id"])


async def test_client_added_to_a_room_does_not_receive_internal_notes(server, clients):
    manager = await clients(server, "am.wang")
    room_id = await room_id_by_title(manager, "瑞丰")
    _, wu_id = await token_for(server, "rf.wu")
    await rooms.remove_member(server.services, room_id=room_id, user_id=wu_id)
    client = await clients(server, "rf.wu")
    await rooms.add_member(server.services, room_id=room_id, user_id=client.user_id, role="client_contact")
    await client.wait_for("room_added")
    note = await manager.call(
        "send_message", {"room_id": room_id, "text": "内部：底价不能低于", "client_msg_id": cid(), "internal": True}
    )
    public = await manager.call("send_message", {"room_id": room_id, "text": "欢迎回来", "client_msg_id": cid()})
    await client.wait_for("message", lambda m: m["id"] == public["message"]["id"])
    assert [m["id"] for m in client.events("message")] == [public["message"]["id"]]
    history = await client.call("get_history", {"room_id": room_id, "limit": 100})
    assert note["message"]["id"] not in [m["id"] for m in history["messages"]]


# another company's room ----------------------------------------------------------------------------------


async def test_client_of_another_company_hears_nothing_from_the_room(server, clients):
    outsider = await clients(server, "rf.zhou")
    insider = await clients(server, "xh.li")
    manager = await clients(server, "am.wang")
    room_id = await room_id_by_title(insider, "星河")
    sent = await insider.call("send_message", {"room_id": room_id, "text": "我们的报价是", "client_msg_id": cid()})
    await insider.call("set_typing", {"room_id": room_id, "typing": True})
    await insider.call("mark_read", {"room_id": room_id, "seq": sent["message"]["seq"]})
    await insider.call("edit_message", {"message_id": sent["message"]["id"], "text": "我们的报价是（已改）"})
    await insider.call("delete_message", {"message_id": sent["message"]["id"]})
    await manager.wait_for("message_deleted")
    await asyncio.sleep(0)
    await outsider.call("list_rooms")  # a round trip
    room_events = [n for n, d in outsider.received if isinstance(d, dict) and d.get("room_id") == room_id]
    assert room_events == []
    assert insider.user_id not in [d["user_id"] for d in outsider.events("presence")]
    assert [r["title"] for r in (await outsider.call("list_rooms"))["rooms"]] == ["瑞丰物流股份有限公司 · 司库系统"]


# a socket lives no longer than its token -----------------------------------------------------------


async def test_a_password_change_closes_the_users_open_sockets_at_once(server, clients):
    sun = await clients(server, "xh.sun")
    wang = await clients(server, "am.wang")
    room_id = await room_id_by_title(wang, "星河")
    admin, _ = await token_for(server, "admin")
    status, _ = await http(
        server, "PATCH", f"/api/admin/users/{sun.user_id}", token=admin, json={"password": "a-new-password-1"}
    )
    assert status == 200
    await sun.wait_for("disconnect")
    await wang.call("send_message", {"room_id": room_id, "text": "改密后的机密消息", "client_msg_id": cid()})
    await asyncio.sleep(0.2)
    assert all(m["text"] != "改密后的机密消息" for m in sun.events("message"))


async def test_an_idle_socket_is_closed_when_its_token_expires(server):
    user = await server.services.store.get_user_by_username("xh.li")
    assert user is not None
    now = datetime.now(UTC)
    client = await connect(server.url, forge(server, user.id, iat=now, exp=now + timedelta(seconds=1)))
    try:
        await client.wait_for("disconnect", timeout=5)
    finally:
        await client.disconnect()


async def test_a_revoked_socket_is_told_why_before_it_is_closed(server, clients):
    sun = await clients(server, "xh.sun")
    room_id = await room_id_by_title(sun, "星河")
    # Revoked behind the broadcaster's back (as another process would): the next event finds out.
    await server.services.store.update_user(sun.user_id, tokens_after=datetime.now(UTC) + timedelta(seconds=1))
    ack = await sun.call("get_history", {"room_id": room_id})
    assert ack["ok"] is False and ack["error"]["code"] == "unauthorized"
    await sun.wait_for("disconnect")


async def test_a_disable_made_by_another_process_closes_open_sockets_within_the_check_interval(server_factory):
    server = await server_factory(session_check_seconds=0.2)
    user = await server.services.store.get_user_by_username("xh.sun")
    assert user is not None
    client = await connect(server.url, server.services.tokens.issue(user.id))
    try:
        # As `run.py update-user xh.sun --disable` does from its own process: the store changes, no event here.
        await server.services.store.update_user(user.id, active=False, tokens_after=datetime.now(UTC))
        await client.wait_for("disconnect", timeout=3)
    finally:
        await client.disconnect()
