"""After a network drop or a server restart, a client catches up from its last seq: no gaps, no duplicates."""

from __future__ import annotations

import uuid

from tests.conftest import connect, login, room_id_by_title


async def catch_up(client, room_id: str, last_seq: int) -> list[dict]:
    """What a client does after reconnecting: pages of after_seq until has_more is false."""
    caught: list[dict] = []
    while True:
        page = await client.call("get_history", {"room_id": room_id, "after_seq": last_seq, "limit": 3})
        assert page["ok"], page
        caught.extend(page["messages"])
        if page["messages"]:
            last_seq = page["messages"][-1]["seq"]
        if not page["has_more"]:
            return caught


async def test_a_dropped_client_catches_up_without_gaps_or_duplicates(server, clients):
    sender = await clients(server, "am.wang")
    token = await login(server.url, "xh.sun")
    reader = await connect(server.url, token)
    room_id = await room_id_by_title(reader, "星河")
    history = await reader.call("get_history", {"room_id": room_id})
    last_seen = history["messages"][-1]["seq"]
    await reader.disconnect()

    sent = []
    for i in range(8):
        ack = await sender.call(
            "send_message", {"room_id": room_id, "text": f"断线期间的消息 {i}", "client_msg_id": uuid.uuid4().hex}
        )
        sent.append(ack["message"])

    reader = await connect(server.url, token)
    try:
        caught = await catch_up(reader, room_id, last_seen)
    finally:
        await reader.disconnect()
    assert [m["id"] for m in caught] == [m["id"] for m in sent]
    assert [m["seq"] for m in caught] == list(range(last_seen + 1, last_seen + 9))


async def test_after_a_server_restart_messages_are_kept_and_clients_catch_up(server_factory):
    first = await server_factory()
    token = await login(first.url, "am.wang")
    writer = await connect(first.url, token)
    room_id = await room_id_by_title(writer, "星河")
    acked = [
        (await writer.call("send_message", {"room_id": room_id, "text": f"重启前 {i}", "client_msg_id": f"r-{i}"}))[
            "message"
        ]
        for i in range(5)
    ]
    await writer.disconnect()
    await first.stop()

    second = await server_factory()  # same data dir, same secret: the old token still works
    reader = await connect(second.url, token)
    try:
        caught = await catch_up(reader, room_id, acked[0]["seq"] - 1)
        resent = await reader.call("send_message", {"room_id": room_id, "text": "重启前 4", "client_msg_id": "r-4"})
    finally:
        await reader.disconnect()
    assert [m["id"] for m in caught] == [m["id"] for m in acked]
    assert resent["message"]["id"] == acked[-1]["id"]  # a retry after the restart is still idempotent
