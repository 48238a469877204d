"""The load generator: simulated users spread over worker processes, each an asyncio loop of `LeanClient`s.

The parent drives the workers through a pipe, one command at a time (connect, send a fan-out step, collect the
step's deliveries, report CPU, close). Fan-out messages carry their own send time (`time.monotonic()`, one clock
for every process on the machine) in their text, `F|<step>|<send time>|<client_msg_id>`, so a receiver measures
send→deliver latency without asking anyone.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import multiprocessing.connection
import os
import random
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from .eio import LeanClient

Spec = tuple[str, str, dict[str, Any]]  # (user id, room id, connect auth payload)


def cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


@dataclass
class _Step:
    number: int = -1
    seen: list[set[str]] = field(default_factory=list)
    last_seq: list[dict[str, int]] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    unique: int = 0
    duplicates: int = 0
    foreign: int = 0  # a message of a room this client is not in
    out_of_order: int = 0
    stray: int = 0  # fan-out messages of another step


class Worker:
    def __init__(self, base_url: str, specs: list[Spec]) -> None:
        self.base_url = base_url
        self.specs = specs
        self.clients: list[LeanClient | None] = [None] * len(specs)
        self.step = _Step()
        self.session: aiohttp.ClientSession | None = None

    def _on_raw(self, i: int, room: str) -> Any:
        def on_raw(data: str, now: float) -> bool:
            if not data.startswith('42["message"'):
                return True  # presence and the rest: not measured
            message = json.loads(data[2:])[1]
            text: str = message["text"]
            if not text.startswith("F|"):
                return True
            st = self.step
            _, number, sent, cmid = text.split("|", 3)
            if int(number) != st.number:
                st.stray += 1
                return True
            if message["room_id"] != room:
                st.foreign += 1
                return True
            seen = st.seen[i]
            if cmid in seen:
                st.duplicates += 1
                return True
            seen.add(cmid)
            last = st.last_seq[i]
            seq = int(message["seq"])
            if seq <= last.get(room, 0):
                st.out_of_order += 1
            last[room] = seq
            st.unique += 1
            st.latencies.append(now - float(sent))
            return True

        return on_raw

    async def connect(self, start: int, end: int, concurrency: int) -> dict[str, Any]:
        if self.session is None:
            self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, force_close=True))
        session = self.session
        gate = asyncio.Semaphore(concurrency)
        errors: list[str] = []
        t0 = time.monotonic()

        async def one(i: int) -> None:
            _, room, auth = self.specs[i]
            async with gate:
                client = LeanClient(session, on_raw=self._on_raw(i, room))
                try:
                    await client.connect(self.base_url, auth)
                    self.clients[i] = client
                except Exception as exc:
                    errors.append(f"{type(exc).__name__}: {exc}"[:200])

        await asyncio.gather(*(one(i) for i in range(start, min(end, len(self.specs)))))
        connected = sum(c is not None for c in self.clients)
        return {"connected": connected, "errors": errors, "seconds": time.monotonic() - t0}

    def begin(self, number: int) -> None:
        """Start counting step `number` (every worker begins before any sends, so none misses the first ones)."""
        st = _Step(number=number)
        st.seen = [set() for _ in self.specs]
        st.last_seq = [{} for _ in self.specs]
        self.step = st

    async def send_step(self, number: int, rate: float, seconds: float) -> dict[str, Any]:
        """Send at `rate` messages/s for `seconds` from this worker's clients in turn (open loop: a late send does
        not push the schedule back), then wait for every ack."""
        assert self.step.number == number
        loop = asyncio.get_running_loop()
        senders = [i for i, c in enumerate(self.clients) if c is not None]
        random.Random(number).shuffle(senders)  # noqa: S311 - a load pattern, not a secret
        total = int(rate * seconds)
        acked: list[tuple[str, str]] = []
        ack_latencies: list[float] = []
        failures: list[str] = []
        pending: list[asyncio.Future[Any]] = []
        cpu0 = cpu_seconds()
        t0 = loop.time()
        for k in range(total):
            target = t0 + k / rate
            delay = target - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            i = senders[k % len(senders)]
            client = self.clients[i]
            assert client is not None
            room = self.specs[i][1]
            cmid = f"{number}.{os.getpid()}.{k}"
            sent = loop.time()
            payload = {"room_id": room, "text": f"F|{number}|{sent!r}|{cmid}", "client_msg_id": cmid}
            try:
                future = await client.emit_with_ack("send_message", payload)
            except ConnectionError as exc:
                failures.append(str(exc))
                continue

            def done(f: asyncio.Future[Any], cmid: str = cmid, room: str = room, sent: float = sent) -> None:
                if f.cancelled() or f.exception() is not None:
                    failures.append("no ack")
                    return
                ack = f.result()
                if isinstance(ack, dict) and ack.get("ok"):
                    acked.append((cmid, room))
                    ack_latencies.append(loop.time() - sent)
                else:
                    failures.append(json.dumps(ack)[:200])

            future.add_done_callback(done)
            pending.append(future)
        sending = loop.time() - t0
        if pending:
            await asyncio.wait(pending, timeout=60)
        return {
            "sent": total,
            "acked": acked,
            "ack_latencies": ack_latencies,
            "failures": failures[:20],
            "failed": len(failures),
            "send_seconds": sending,
            "cpu": cpu_seconds() - cpu0,
        }

    async def collect(self, expected: dict[str, list[str]], timeout: float) -> dict[str, Any]:
        """Wait until every client has every acked message of its room (or `timeout`), then count."""
        st = self.step
        cpu0 = cpu_seconds()
        wanted = {room: set(cmids) for room, cmids in expected.items()}
        live = [i for i, c in enumerate(self.clients) if c is not None]
        need = sum(len(wanted.get(self.specs[i][1], ())) for i in live)
        deadline = time.monotonic() + timeout
        while st.unique < need and time.monotonic() < deadline:  # noqa: ASYNC110 - counts bumped by many readers
            await asyncio.sleep(0.05)
        lost = unexpected = 0
        for i in live:
            room_wanted = wanted.get(self.specs[i][1], set())
            lost += len(room_wanted - st.seen[i])
            unexpected += len(st.seen[i] - room_wanted)
        return {
            "expected": need,
            "received": st.unique,
            "lost": lost,
            "unexpected": unexpected,
            "duplicates": st.duplicates,
            "foreign": st.foreign,
            "out_of_order": st.out_of_order,
            "stray": st.stray,
            "latencies": st.latencies,
            "cpu": cpu_seconds() - cpu0,
        }

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self.clients if c is not None), return_exceptions=True)
        self.clients = [None] * len(self.specs)
        if self.session is not None:
            await self.session.close()
            self.session = None


async def _serve(conn: multiprocessing.connection.Connection, base_url: str, specs: list[Spec]) -> None:
    worker = Worker(base_url, specs)
    loop = asyncio.get_running_loop()
    while True:
        command, args = await loop.run_in_executor(None, conn.recv)
        if command == "connect":
            result: Any = await worker.connect(*args)
        elif command == "begin":
            worker.begin(*args)
            result = None
        elif command == "send":
            result = await worker.send_step(*args)
        elif command == "collect":
            result = await worker.collect(*args)
        elif command == "cpu":
            result = cpu_seconds()
        elif command == "close":
            await worker.close()
            conn.send(None)
            return
        else:
            result = {"error": f"unknown command {command!r}"}
        conn.send(result)


def _main(conn: multiprocessing.connection.Connection, base_url: str, specs: list[Spec]) -> None:
    asyncio.run(_serve(conn, base_url, specs))


class Generator:
    """The parent's handle on the worker processes."""

    def __init__(self, base_url: str, specs: list[Spec], workers: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.shares = [specs[w::workers] for w in range(workers)]
        self.upto = 0
        self.pipes: list[multiprocessing.connection.Connection] = []
        self.procs: list[multiprocessing.process.BaseProcess] = []
        for share in self.shares:
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_main, args=(child, base_url, share), daemon=True)
            proc.start()
            self.pipes.append(parent)
            self.procs.append(proc)

    def call_all(self, command: str, per_worker_args: list[tuple[Any, ...]]) -> list[Any]:
        for pipe, args in zip(self.pipes, per_worker_args, strict=True):
            pipe.send((command, args))
        return [pipe.recv() for pipe in self.pipes]

    def broadcast(self, command: str, *args: Any) -> list[Any]:
        return self.call_all(command, [args] * len(self.pipes))

    def connect(self, upto: int, concurrency: int = 25) -> dict[str, Any]:
        """Connect the first `upto` users (over all workers)."""
        n = len(self.shares)
        per = [(_share_count(self.upto, w, n), _share_count(upto, w, n), concurrency) for w in range(n)]
        self.upto = upto
        t0 = time.monotonic()
        results = self.call_all("connect", per)
        return {
            "connected": sum(r["connected"] for r in results),
            "errors": [e for r in results for e in r["errors"]][:10],
            "seconds": time.monotonic() - t0,
        }

    def cpu(self) -> float:
        return float(sum(self.broadcast("cpu")))

    def close(self) -> None:
        try:
            self.broadcast("close")
        except (EOFError, BrokenPipeError, OSError):
            pass
        for proc in self.procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()


def _share_count(upto: int, w: int, workers: int) -> int:
    """How many of the first `upto` users (dealt round-robin) worker `w` holds."""
    return len(range(w, upto, workers))
