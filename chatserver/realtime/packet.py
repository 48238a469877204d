"""The Socket.IO packet class the server uses (`AsyncServer(serializer=JsonFirstPacket)`).

python-socketio's `Packet` decides whether a packet to send carries binary data by walking the whole payload in
Python (`data_is_binary`: a list and a `functools.reduce` per dict and list), then walks it again to JSON-encode it.
A 50-message history ack is ~1,500 values: the walk cost more than the query. This server never sends bytes, so
this class JSON-encodes the payload first (C code) and keeps the text for `encode()`; only a payload JSON cannot
encode (bytes, or anything else it refuses) goes the library's way, which then finds the bytes or fails as before.
The text sent is the same, character for character, as the library's.
"""

from __future__ import annotations

from typing import Any

from socketio import packet


class JsonFirstPacket(packet.Packet):  # type: ignore[misc]
    def __init__(
        self,
        packet_type: int = packet.EVENT,
        data: Any = None,
        namespace: str | None = None,
        id: int | None = None,
        binary: bool | None = None,
        encoded_packet: Any = None,
    ) -> None:
        self._json: str | None = None
        if binary is None and encoded_packet is None and data is not None:
            try:
                self._json = self.json.dumps(data, separators=(",", ":"))
                binary = False
            except TypeError:  # bytes somewhere (or something JSON cannot encode): the library's own way
                self._json = None
        super().__init__(packet_type, data, namespace, id, binary, encoded_packet)

    def encode(self) -> Any:
        if self._json is None or self.packet_type in (packet.BINARY_EVENT, packet.BINARY_ACK):
            return super().encode()
        encoded = str(self.packet_type)
        if self.namespace is not None and self.namespace != "/":
            encoded += self.namespace + ","
        if self.id is not None:
            encoded += str(self.id)
        return encoded + self._json
