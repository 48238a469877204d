"""Seeding the real server's data dir, starting both servers as subprocesses, and reading their CPU time and memory.

The real server runs as `run.py serve --no-demo --port 0 --data-dir <tmp>` with auth, validation, the SQLite store
and its bots on. Users, rooms and memberships are created through the `Store` API before it starts; the history
room's million messages are written in one transaction with `executemany` straight into the store's `messages`
table (the socket would take hours, and the Store contract has no bulk insert), bumping the room's `last_seq`.
"""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")

# The product's per-user limits would refuse a generator that sends faster than a person types; the bench raises
# them (and says so in its report). Everything else runs with the defaults.
BENCH_ENV = {
    "CHAT_RATE_SEND_PER_SECOND": "1000",
    "CHAT_RATE_SEND_BURST": "1000",
    "CHAT_RATE_EVENTS_PER_SECOND": "2000",
    "CHAT_RATE_EVENTS_BURST": "2000",
}


def user_id(i: int) -> str:
    return f"u_bench{i:05d}"


def room_id(k: int) -> str:
    return f"r_bench{k:04d}"


HISTORY_ROOM = "r_benchhist"
HISTORY_USER = "u_benchhist"


@dataclass(frozen=True)
class Layout:
    """Users 0..users-1; user i is in room i // room_size. One more user alone in the history room."""

    users: int
    room_size: int
    history_messages: int

    @property
    def rooms(self) -> int:
        return (self.users + self.room_size - 1) // self.room_size

    def room_of(self, i: int) -> str:
        return room_id(i // self.room_size)


def is_staff(i: int) -> bool:
    return i % 5 == 0  # one in five is bank staff (their sockets also join the room's staff channel)


async def _seed_store(data_dir: Path, layout: Layout) -> None:
    from chatserver.models import Membership, Room, User
    from chatserver.storage.sqlite import SQLiteStore

    store = SQLiteStore(data_dir / "chat.db")
    await store.open()
    try:
        for k in range(layout.rooms):
            await store.create_room(Room(id=room_id(k), kind="project", title=f"压测房间 {k}"))
        await store.create_room(Room(id=HISTORY_ROOM, kind="project", title="压测历史"))
        people = [(i, user_id(i)) for i in range(layout.users)]
        for i, uid in people:
            staff = is_staff(i)
            await store.create_user(
                User(
                    id=uid,
                    username=f"bench.{i}",
                    name=f"压测用户{i}",
                    org="云帆银行交易银行部" if staff else "压测客户有限公司",
                    kind="staff" if staff else "client",
                    roles=["service_specialist"] if staff else ["client_member"],
                )
            )
            await store.add_member(
                Membership(room_id=layout.room_of(i), user_id=uid, role="service_specialist" if staff else "client")
            )
        await store.create_user(
            User(
                id=HISTORY_USER,
                username="bench.hist",
                name="压测历史",
                org="云帆银行交易银行部",
                kind="staff",
                roles=["developer"],
            )
        )
        await store.add_member(Membership(room_id=HISTORY_ROOM, user_id=HISTORY_USER, role="developer"))
    finally:
        await store.close()


def _seed_history(db: Path, count: int) -> None:
    """`count` messages in the history room, in one transaction (the server is not running yet)."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("BEGIN IMMEDIATE")
        start = datetime(2026, 1, 1, tzinfo=UTC)
        batch = 100_000
        for first in range(1, count + 1, batch):
            rows = [
                (
                    f"m_hist{seq:010d}",
                    HISTORY_ROOM,
                    seq,
                    HISTORY_USER,
                    f"历史消息 {seq}: 银企直连测试环境联调进度更新",
                    f"hist-{seq}",
                    None,
                    0,
                    (start + timedelta(seconds=seq)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                )
                for seq in range(first, min(count, first + batch - 1) + 1)
            ]
            conn.executemany(
                "INSERT INTO messages (id, room_id, seq, sender_id, text, client_msg_id, reply_to, internal,"
                " created_at, edited_at, deleted) VALUES (?,?,?,?,?,?,?,?,?,NULL,0)",
                rows,
            )
        conn.execute("UPDATE rooms SET last_seq = ? WHERE id = ?", (count, HISTORY_ROOM))
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def seed(data_dir: Path, layout: Layout) -> dict[str, float]:
    """Seed an empty data dir; returns how long each part took (seconds)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    asyncio.run(_seed_store(data_dir, layout))
    t1 = time.monotonic()
    _seed_history(data_dir / "chat.db", layout.history_messages)
    t2 = time.monotonic()
    # The seed writes ~270 MB; flushed here, its writeback cannot land in a measured fsync (the real server's
    # durable commits) minutes later.
    os.sync()
    return {"users_rooms_s": t1 - t0, "history_s": t2 - t1, "sync_s": time.monotonic() - t2}


def mint_tokens(data_dir: Path, user_ids: list[str]) -> dict[str, str]:
    """Tokens exactly as the server issues them, signed with the data dir's secret."""
    from chatserver.auth import Tokens, load_or_create_secret
    from chatserver.settings import load_settings

    settings = load_settings(environ={}, overrides={"data_dir": data_dir})
    tokens = Tokens(settings, load_or_create_secret(data_dir))
    return {uid: tokens.issue(uid) for uid in user_ids}


# processes ---------------------------------------------------------------------------------------


@dataclass
class ServerProcess:
    kind: str  # "reference" | "real"
    proc: subprocess.Popen[str]
    url: str
    log: IO[str]
    drain: threading.Thread
    started: float = field(default_factory=time.monotonic)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process (all its threads: SQLite's run there too)."""
        with open(f"/proc/{self.pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def rss_bytes(self) -> int:
        with open(f"/proc/{self.pid}/statm") as fh:
            return int(fh.read().split()[1]) * PAGE_SIZE

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.drain.join(10)  # it closes stdout at the end of the stream
        self.log.close()


_RUNNING = re.compile(r"running at (http://[^/\s]+)/")


def _start(kind: str, argv: list[str], env: dict[str, str], log_path: Path, timeout: float = 60) -> ServerProcess:
    log = open(log_path, "w")
    proc = subprocess.Popen(  # noqa: S603 - our own interpreter and scripts
        argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=log, text=True, encoding="utf-8"
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        match = _RUNNING.search(line)
        if match:
            # Keep draining stdout so the server never blocks on a full pipe.
            return ServerProcess(kind=kind, proc=proc, url=match.group(1), log=log, drain=_drain(proc.stdout))
    proc.kill()
    proc.wait()
    proc.stdout.close()
    log.close()
    raise RuntimeError(f"the {kind} server did not start; see {log_path}")


def _drain(stream: IO[str]) -> threading.Thread:
    def run() -> None:
        with stream:
            for _ in stream:
                pass

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def start_real(
    data_dir: Path, log_path: Path, extra_env: dict[str, Any] | None = None, profile: Path | None = None
) -> ServerProcess:
    """`profile`: run the server under pyinstrument (sampling, in process) and write its text report there on
    stop (py-spy cannot read this interpreter here)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT_")}
    env.update(BENCH_ENV)
    env.update({k: str(v) for k, v in (extra_env or {}).items()})
    argv = [sys.executable, "run.py", "--no-demo", "--port", "0", "--data-dir", str(data_dir), "serve"]
    if profile is not None and profile.suffix == ".pstats":  # deterministic, CPU time of the event loop's thread
        argv = [sys.executable, "-m", "cProfile", "-o", str(profile), *argv[1:]]
    elif profile is not None:
        prof = ["-m", "pyinstrument", "--renderer", "text", "--show-all", "--outfile", str(profile)]
        argv = [sys.executable, *prof, *argv[1:]]
    return _start("real", argv, env, log_path)


def start_reference(log_path: Path, history_count: int) -> ServerProcess:
    argv = [
        sys.executable,
        "-m",
        "bench.reference_server",
        "--port",
        "0",
        "--history-room",
        HISTORY_ROOM,
        "--history-count",
        str(history_count),
    ]
    return _start("reference", argv, dict(os.environ), log_path)
