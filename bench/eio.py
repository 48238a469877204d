"""A lean Engine.IO v4 / Socket.IO v5 client over one aiohttp websocket, for the load generator.

Only what the scenarios need: the websocket transport (no polling, no upgrade), the default namespace, connect with
an auth payload, pings answered, events and acks parsed, events emitted with an ack id. One instance costs a
websocket and a few dicts: far less than a `socketio.AsyncClient`, so one generator process holds thousands.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import aiohttp

EventHandler = Callable[[str, Any, float], None]  # (event name, first argument, receive time)


class ConnectRefused(Exception):
    pass


def _now() -> float:
    return asyncio.get_running_loop().time()  # time.monotonic(): one clock for every process on the machine


class LeanClient:
    """`await connect(...)`, then `emit`/`call`; server events go to `on_event`, synchronously, in arrival order.

    `on_raw`, when set, sees each `42[...]` event frame's text before it is parsed and returns True if it handled
    it (the fan-out receivers parse only what they need)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        on_event: EventHandler | None = None,
        on_raw: Callable[[str, float], bool] | None = None,
    ) -> None:
        self._session = session
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._acks: dict[int, asyncio.Future[Any]] = {}
        self._next_id = 0
        self.on_event = on_event
        self.on_raw = on_raw
        self.sid: str | None = None
        self.closed = asyncio.Event()

    async def connect(self, base_url: str, auth: dict[str, Any] | None, timeout: float = 30) -> None:
        url = base_url.replace("http://", "ws://", 1) + "/socket.io/?EIO=4&transport=websocket"
        ws = await self._session.ws_connect(
            url, autoping=False, max_msg_size=0, compress=0, timeout=aiohttp.ClientWSTimeout(ws_close=timeout)
        )
        self._ws = ws
        opened = await ws.receive_str(timeout=timeout)
        if not opened.startswith("0"):
            raise ConnectionError(f"expected an Engine.IO open packet, got {opened[:40]!r}")
        await ws.send_str("40" + (json.dumps(auth, separators=(",", ":")) if auth is not None else ""))
        while True:
            frame = await ws.receive_str(timeout=timeout)
            if frame == "2":
                await ws.send_str("3")
            elif frame.startswith("40"):
                self.sid = json.loads(frame[2:]).get("sid") if len(frame) > 2 else None
                break
            elif frame.startswith("44"):
                await ws.close()
                raise ConnectRefused(frame[2:])
            # anything else before the namespace is open (none expected) is dropped
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        ws = self._ws
        assert ws is not None
        acks = self._acks
        try:
            while True:
                msg = await ws.receive()
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    break
                data: str = msg.data
                now = _now()
                if data.startswith("42"):
                    if self.on_raw is not None and self.on_raw(data, now):
                        continue
                    if self.on_event is not None:
                        packet = json.loads(data[2:])
                        self.on_event(packet[0], packet[1] if len(packet) > 1 else None, now)
                elif data.startswith("43"):
                    bracket = data.index("[")
                    future = acks.pop(int(data[2:bracket]), None)
                    if future is not None and not future.done():
                        args = json.loads(data[bracket:])
                        future.set_result(args[0] if args else None)
                elif data == "2":
                    await ws.send_str("3")
                elif data.startswith("41") or data == "1":
                    break
        except (aiohttp.ClientError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            for future in acks.values():
                if not future.done():
                    future.set_exception(ConnectionError("disconnected"))
            acks.clear()
            self.closed.set()

    async def emit_with_ack(self, event: str, data: Any) -> asyncio.Future[Any]:
        """Send `event` with an ack id; the returned future gets the ack's first argument."""
        ws = self._ws
        if ws is None or self.closed.is_set():
            raise ConnectionError("not connected")
        self._next_id += 1
        ack_id = self._next_id
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._acks[ack_id] = future
        frame = f"42{ack_id}" + json.dumps([event, data], separators=(",", ":"), ensure_ascii=False)
        await ws.send_str(frame)
        return future

    async def call(self, event: str, data: Any, timeout: float = 30) -> Any:
        return await asyncio.wait_for(await self.emit_with_ack(event, data), timeout)

    async def close(self) -> None:
        ws = self._ws
        if ws is not None and not ws.closed:
            try:
                await ws.send_str("41")
            except (aiohttp.ClientError, ConnectionError):
                pass
            await ws.close()
        if self._reader is not None:
            self._reader.cancel()
            try:
                await self._reader
            except asyncio.CancelledError:
                pass
