"""The server's Socket.IO packet class encodes exactly as python-socketio's own, and still sends bytes as binary."""

from __future__ import annotations

from typing import Any

import pytest
from socketio import packet

from chatserver.realtime.packet import JsonFirstPacket

PAYLOADS: list[Any] = [
    ["message", {"id": "m1", "text": '请确认联调时间 \u2028 "quoted"', "mentions": [], "seq": 7, "deleted": False}],
    {"ok": True, "messages": [{"id": f"m{i}", "text": "x" * i, "reply_to": None} for i in range(50)]},
    [],
    "plain",
]


@pytest.mark.parametrize("data", PAYLOADS)
@pytest.mark.parametrize(
    ("kind", "namespace", "pid"), [(packet.EVENT, "/", None), (packet.ACK, "/", 12), (packet.EVENT, "/other", 3)]
)
def test_the_encoding_is_the_librarys(data: Any, kind: int, namespace: str, pid: int | None) -> None:
    ours = JsonFirstPacket(kind, data=data, namespace=namespace, id=pid)
    theirs = packet.Packet(kind, data=data, namespace=namespace, id=pid)
    assert ours.packet_type == theirs.packet_type
    assert ours.encode() == theirs.encode()


def test_bytes_still_go_as_a_binary_packet() -> None:
    data = ["file", {"name": "a", "body": b"\x00\x01"}]
    ours = JsonFirstPacket(packet.EVENT, data=data, namespace="/")
    assert ours.packet_type == packet.BINARY_EVENT
    assert ours.encode() == packet.Packet(packet.EVENT, data=data, namespace="/").encode()


def test_incoming_packets_decode_as_before() -> None:
    decoded = JsonFirstPacket(encoded_packet='21["send_message",{"room_id":"r1"}]')
    assert (decoded.packet_type, decoded.id, decoded.data) == (packet.EVENT, 1, ["send_message", {"room_id": "r1"}])
