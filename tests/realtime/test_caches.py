"""The per-process caches behind every event (the namespace's signed-in users, the actions' membership checks) never
let a change through late: a change made in this process counts from the moment its write returns, whether or not
an event was published; a change made by another process (the CLI, another server) counts within a second or so:
the namespace asks the store every second whether anyone else wrote (SQLite's `data_version`).

Each test first has the user send or read, so the cached copy is there when the change comes."""

from __future__ import annotations

import asyncio
import time
import uuid

from chatserver.actions import accounts, rooms
from chatserver.storage.sqlite import SQLiteStore
from tests.conftest import RunningServer, room_id_by_title

NOT_FOUND = {"ok": False, "error": {"code": "not_found", "message": "room not found"}}


def cid() -> str:
    return uuid.uuid4().hex


async def send(client, room_id: str, text: str) -> dict:
    return await client.call("send_message", {"room_id": room_id, "text": text, "client_msg_id": cid()})


async def test_a_removed_member_is_refused_at_once(server: RunningServer, clients) -> None:
    sun = await clients(server, "xh.sun")
    room_id = await room_id_by_title(sun, "星河")
    assert (await send(sun, room_id, "第一条"))["ok"]
    assert (await sun.call("get_history", {"room_id": room_id}))["ok"]

    assert await rooms.remove_member(server.services, room_id=room_id, user_id=sun.user_id)

    assert await send(sun, room_id, "第二条") == NOT_FOUND
    assert await sun.call("get_history", {"room_id": room_id}) == NOT_FOUND


async def test_a_member_removed_straight_in_the_store_is_refused_at_once(server: RunningServer, clients) -> None:
    """No event at all (the store written behind the actions' back): the store's change counter still counts."""
    sun = await clients(server, "xh.sun")
    room_id = await room_id_by_title(sun, "星河")
    assert (await send(sun, room_id, "第一条"))["ok"]
    last_seq = (await server.services.store.get_room(room_id)).last_seq

    assert await server.services.store.remove_member(room_id, sun.user_id)

    assert await send(sun, room_id, "第二条") == NOT_FOUND
    assert (await server.services.store.get_room(room_id)).last_seq == last_seq


async def test_a_room_closed_straight_in_the_store_is_read_only_at_once(server: RunningServer, clients) -> None:
    li = await clients(server, "xh.li")
    room_id = await room_id_by_title(li, "星河")
    assert (await send(li, room_id, "第一条"))["ok"]

    await server.services.store.update_room(room_id, read_only=True)

    refused = await send(li, room_id, "第二条")
    assert refused["ok"] is False and refused["error"]["code"] == "room_read_only", refused


async def test_a_disabled_user_is_refused_at_once(server: RunningServer, clients) -> None:
    sun = await clients(server, "xh.sun")
    room_id = await room_id_by_title(sun, "星河")
    assert (await send(sun, room_id, "第一条"))["ok"]
    last_seq = (await server.services.store.get_room(room_id)).last_seq

    # straight in the store: no event, so no disconnect from the broadcaster either
    await server.services.store.update_user(sun.user_id, active=False)

    refused = await send(sun, room_id, "第二条")
    assert refused["ok"] is False and refused["error"]["code"] == "unauthorized", refused
    await sun.wait_for("disconnect")
    assert (await server.services.store.get_room(room_id)).last_seq == last_seq


async def test_a_renamed_users_new_name_shows_at_once(server: RunningServer, clients) -> None:
    li = await clients(server, "xh.li")
    wang = await clients(server, "am.wang")
    room_id = await room_id_by_title(li, "星河")
    before = await send(li, room_id, "改名前")
    old_name = before["message"]["sender"]["name"]

    await accounts.update_user(server.services, None, li.user_id, name="李明远")

    after = await send(li, room_id, "改名后")
    assert (old_name, after["message"]["sender"]["name"]) == (old_name, "李明远") and old_name != "李明远"
    heard = await wang.wait_for("message", lambda m: m["id"] == after["message"]["id"])
    assert heard["sender"]["name"] == "李明远"


async def test_a_rename_by_another_process_shows_within_a_second_or_so(server_factory, clients) -> None:
    server = await server_factory()  # the full session check only every 15 s: the change is found sooner
    li = await clients(server, "xh.li")
    room_id = await room_id_by_title(li, "星河")
    assert (await send(li, room_id, "改名前"))["ok"]

    other = SQLiteStore(server.data_dir / "chat.db")  # its own connections, as `run.py update-user` has
    await other.open()
    try:
        await other.update_user(li.user_id, name="李明远")
    finally:
        await other.close()

    for _ in range(25):  # 2.5 s
        sent = await send(li, room_id, "改名后")
        if sent["message"]["sender"]["name"] == "李明远":
            break
        await asyncio.sleep(0.1)
    assert sent["message"]["sender"]["name"] == "李明远"


async def test_a_disable_by_another_process_closes_the_socket_within_a_second_or_so(server_factory, clients) -> None:
    server = await server_factory()
    sun = await clients(server, "xh.sun")
    room_id = await room_id_by_title(sun, "星河")
    assert (await send(sun, room_id, "禁用前"))["ok"]

    other = SQLiteStore(server.data_dir / "chat.db")  # as `run.py update-user xh.sun --disable` does
    await other.open()
    try:
        await other.update_user(sun.user_id, active=False)
    finally:
        await other.close()

    started = time.monotonic()
    for _ in range(60):  # 3 s
        if not sun.sio.connected:
            break
        await asyncio.sleep(0.05)
    assert not sun.sio.connected
    assert time.monotonic() - started < 2.5
