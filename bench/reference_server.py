"""The reference server: plain python-socketio `AsyncServer` on aiohttp, speaking the events the scenarios use with
the product's payload and ack shapes, and doing none of the product's work (no auth, no storage, no bots, no
validation beyond what it needs to answer). It is the ceiling of the stack on this machine.

    python -m bench.reference_server --port 0 [--history-room ROOM --history-count N]

- connect: `auth = {"user": "<user id>", "rooms": ["<room id>", ...]}`; the socket joins `room:<id>` for each.
- `send_message {room_id, text, client_msg_id}` → broadcast `message` to `room:<room_id>`, ack
  `{ok: true, message: {...seq...}}` (seq from an in-memory counter per room).
- `get_history {room_id, limit, before_seq?}` → `{ok: true, messages: [...], has_more}` from the last messages kept
  in memory (the history room is filled with its newest `--history-keep` messages at start, numbered as if it held
  `--history-count`).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import secrets
import signal
from datetime import UTC, datetime
from typing import Any

import socketio
from aiohttp import web

from chatserver.app import settle_memory_for_serving

_KEEP = 1000


def _iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def _message(room_id: str, seq: int, user_id: str, text: str, client_msg_id: str) -> dict[str, Any]:
    return {
        "id": f"m_{secrets.token_hex(8)}",
        "room_id": room_id,
        "seq": seq,
        "sender": {"id": user_id, "name": user_id, "org": "bench", "kind": "staff"},
        "text": text,
        "client_msg_id": client_msg_id,
        "reply_to": None,
        "internal": False,
        "created_at": _iso(datetime.now(UTC)),
        "edited_at": None,
        "deleted": False,
    }


def create_app(history_room: str | None = None, history_count: int = 0) -> web.Application:
    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        cors_allowed_origins=None,
        max_http_buffer_size=65_536,
        async_handlers=False,  # as the product: one socket's events in order
        logger=False,
        engineio_logger=False,
    )
    last_seq: dict[str, int] = collections.defaultdict(int)
    recent: dict[str, collections.deque[dict[str, Any]]] = collections.defaultdict(
        lambda: collections.deque(maxlen=_KEEP)
    )
    if history_room:
        last_seq[history_room] = history_count
        for seq in range(max(1, history_count - _KEEP + 1), history_count + 1):
            recent[history_room].append(_message(history_room, seq, "seed", f"history message {seq}", f"h{seq}"))

    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        auth = auth if isinstance(auth, dict) else {}
        await sio.save_session(sid, {"user": str(auth.get("user", sid))})
        for room_id in auth.get("rooms", []):
            await sio.enter_room(sid, f"room:{room_id}")

    async def send_message(sid: str, payload: Any = None) -> dict[str, Any]:
        if not isinstance(payload, dict) or not isinstance(payload.get("room_id"), str):
            return {"ok": False, "error": {"code": "invalid_payload", "message": "room_id"}}
        room_id = payload["room_id"]
        session = await sio.get_session(sid)
        last_seq[room_id] += 1
        message = _message(
            room_id, last_seq[room_id], session["user"], str(payload.get("text", "")), str(payload["client_msg_id"])
        )
        recent[room_id].append(message)
        await sio.emit("message", message, to=f"room:{room_id}")
        return {"ok": True, "message": message}

    async def get_history(sid: str, payload: Any = None) -> dict[str, Any]:
        if not isinstance(payload, dict) or not isinstance(payload.get("room_id"), str):
            return {"ok": False, "error": {"code": "invalid_payload", "message": "room_id"}}
        limit = int(payload.get("limit", 50))
        before = payload.get("before_seq")
        kept = [m for m in recent[payload["room_id"]] if before is None or m["seq"] < before]
        page = kept[-limit:]
        return {"ok": True, "messages": page, "has_more": bool(page) and page[0]["seq"] > 1}

    sio.on("connect", connect)
    sio.on("send_message", send_message)
    sio.on("get_history", get_history)
    app = web.Application()
    sio.attach(app)
    return app


async def _main(args: argparse.Namespace) -> None:
    app = create_app(args.history_room, args.history_count)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1)
    await runner.setup()
    settle_memory_for_serving()  # the same collector settings as `run.py` gives the real server: a fair ceiling
    site = web.TCPSite(runner, "127.0.0.1", args.port)
    await site.start()
    print(f"reference server is running at http://127.0.0.1:{runner.addresses[0][1]}/", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--history-room")
    parser.add_argument("--history-count", type=int, default=0)
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
