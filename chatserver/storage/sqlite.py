"""The embedded default store: SQLite through aiosqlite, in WAL mode with synchronous=FULL.

One connection writes (behind a lock, one transaction at a time), another reads; WAL lets the
reader run alongside the writer and see every committed write. The schema carries its version in
`PRAGMA user_version` and `_MIGRATIONS` upgrades an older data dir in place.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from ..models import (
    AuditEntry,
    ExpertSession,
    Invitation,
    Membership,
    MentionEmail,
    MentionEmailState,
    Message,
    Project,
    Room,
    RoomSummary,
    Stage,
    Ticket,
    TicketChange,
    TicketStatus,
    TicketSync,
    User,
)
from .base import BotStateFull, DuplicateKey, Revision, RoomClosed, Store

_MIGRATIONS: list[str] = [
    # version 1
    """
    CREATE TABLE users (
        id TEXT PRIMARY KEY,
        username TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        org TEXT NOT NULL,
        kind TEXT NOT NULL,
        roles TEXT NOT NULL,
        active INTEGER NOT NULL,
        password_hash TEXT,
        created_at TEXT NOT NULL
    );
    CREATE TABLE projects (
        id TEXT PRIMARY KEY,
        external_id TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        client_org TEXT NOT NULL,
        products TEXT NOT NULL,
        stage TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE rooms (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        title TEXT NOT NULL,
        project_id TEXT REFERENCES projects(id),
        read_only INTEGER NOT NULL DEFAULT 0,
        last_seq INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL
    );
    CREATE TABLE memberships (
        room_id TEXT NOT NULL REFERENCES rooms(id),
        user_id TEXT NOT NULL REFERENCES users(id),
        role TEXT NOT NULL,
        last_read_seq INTEGER NOT NULL DEFAULT 0,
        joined_at TEXT NOT NULL,
        PRIMARY KEY (room_id, user_id)
    );
    CREATE INDEX memberships_by_user ON memberships(user_id);
    CREATE TABLE messages (
        id TEXT PRIMARY KEY,
        room_id TEXT NOT NULL REFERENCES rooms(id),
        seq INTEGER NOT NULL,
        sender_id TEXT NOT NULL REFERENCES users(id),
        text TEXT NOT NULL,
        client_msg_id TEXT NOT NULL,
        reply_to TEXT,
        internal INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        edited_at TEXT,
        deleted INTEGER NOT NULL DEFAULT 0,
        UNIQUE (room_id, seq),
        UNIQUE (room_id, sender_id, client_msg_id)
    );
    CREATE TABLE message_revisions (
        message_id TEXT NOT NULL REFERENCES messages(id),
        text TEXT NOT NULL,
        replaced_at TEXT NOT NULL,
        replaced_by TEXT NOT NULL
    );
    CREATE INDEX message_revisions_by_message ON message_revisions(message_id);
    """,
    # version 2: projects from the service platform, staffing, the expert desk, the audit log
    """
    ALTER TABLE users ADD COLUMN email TEXT;
    ALTER TABLE users ADD COLUMN skills TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE users ADD COLUMN duty TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE users ADD COLUMN max_sessions INTEGER NOT NULL DEFAULT 3;
    ALTER TABLE users ADD COLUMN tokens_after TEXT;
    ALTER TABLE projects ADD COLUMN room_id TEXT;
    ALTER TABLE projects ADD COLUMN unstaffed TEXT NOT NULL DEFAULT '[]';
    CREATE TABLE assignments (
        project_id TEXT NOT NULL REFERENCES projects(id),
        user_id TEXT NOT NULL REFERENCES users(id),
        role TEXT NOT NULL,
        assigned_at TEXT NOT NULL,
        PRIMARY KEY (project_id, user_id, role)
    );
    CREATE INDEX assignments_by_user ON assignments(user_id);
    CREATE TABLE deliveries (
        source TEXT NOT NULL,
        delivery_id TEXT NOT NULL,
        result TEXT NOT NULL,
        received_at TEXT NOT NULL,
        PRIMARY KEY (source, delivery_id)
    );
    CREATE TABLE expert_sessions (
        room_id TEXT PRIMARY KEY REFERENCES rooms(id),
        client_id TEXT NOT NULL REFERENCES users(id),
        product TEXT NOT NULL,
        status TEXT NOT NULL,
        requested_at TEXT NOT NULL,
        requested_by TEXT NOT NULL,
        expert_id TEXT REFERENCES users(id),
        assigned_at TEXT,
        closed_at TEXT,
        rating INTEGER,
        comment TEXT
    );
    CREATE INDEX expert_sessions_by_status ON expert_sessions(status, product, requested_at);
    CREATE INDEX expert_sessions_by_expert ON expert_sessions(expert_id, status);
    CREATE TABLE audit_log (
        id TEXT PRIMARY KEY,
        at TEXT NOT NULL,
        actor_id TEXT,
        action TEXT NOT NULL,
        outcome TEXT NOT NULL,
        room_id TEXT,
        target_id TEXT,
        detail TEXT NOT NULL
    );
    CREATE INDEX audit_log_by_time ON audit_log(at);
    """,
    # 3: bots' small key-value state
    """
    CREATE TABLE bot_state (
        bot TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (bot, key)
    );
    """,
    # 4: mentions on messages, mention emails, invitations
    """
    ALTER TABLE messages ADD COLUMN mentions TEXT NOT NULL DEFAULT '[]';
    CREATE TABLE mention_emails (
        user_id TEXT NOT NULL REFERENCES users(id),
        message_id TEXT NOT NULL REFERENCES messages(id),
        room_id TEXT NOT NULL REFERENCES rooms(id),
        queued_at TEXT NOT NULL,
        state TEXT NOT NULL,
        done_at TEXT,
        PRIMARY KEY (user_id, message_id)
    );
    CREATE INDEX mention_emails_by_state ON mention_emails(state, queued_at);
    CREATE TABLE invitations (
        token_hash TEXT PRIMARY KEY,
        user_id TEXT NOT NULL REFERENCES users(id),
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        used_at TEXT,
        revoked_at TEXT
    );
    CREATE INDEX invitations_by_user ON invitations(user_id);
    """,
    # 5: tickets filed from rooms (/ticket), with their status history
    """
    CREATE TABLE tickets (
        id TEXT PRIMARY KEY,
        number INTEGER NOT NULL UNIQUE,
        title TEXT NOT NULL,
        description TEXT NOT NULL,
        project_id TEXT,
        room_id TEXT NOT NULL REFERENCES rooms(id),
        reporter_id TEXT NOT NULL REFERENCES users(id),
        source_message_id TEXT NOT NULL UNIQUE,
        command_message_id TEXT NOT NULL,
        internal INTEGER NOT NULL DEFAULT 0,
        status TEXT NOT NULL,
        external_key TEXT UNIQUE,
        change_seq INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX tickets_by_room ON tickets(room_id, number);
    CREATE TABLE ticket_changes (
        ticket_id TEXT NOT NULL REFERENCES tickets(id),
        seq INTEGER NOT NULL,
        status_from TEXT NOT NULL,
        status_to TEXT NOT NULL,
        actor_id TEXT,
        source TEXT NOT NULL,
        at TEXT NOT NULL,
        PRIMARY KEY (ticket_id, seq)
    );
    """,
    # 6: one ticket per source message *and visibility* (an internal ticket about a public message must not stand
    # in for the public one); the outside system's version and the statuses pushed to it (to know its echoes).
    # SQLite cannot drop a column's UNIQUE: the table is rebuilt (its history moved aside meanwhile, for the FK).
    """
    CREATE TABLE tickets_v6 (
        id TEXT PRIMARY KEY,
        number INTEGER NOT NULL UNIQUE,
        title TEXT NOT NULL,
        description TEXT NOT NULL,
        project_id TEXT,
        room_id TEXT NOT NULL REFERENCES rooms(id),
        reporter_id TEXT NOT NULL REFERENCES users(id),
        source_message_id TEXT NOT NULL,
        command_message_id TEXT NOT NULL,
        internal INTEGER NOT NULL DEFAULT 0,
        status TEXT NOT NULL,
        external_key TEXT UNIQUE,
        change_seq INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        external_version INTEGER,
        pushed TEXT NOT NULL DEFAULT '[]',
        UNIQUE (source_message_id, internal)
    );
    INSERT INTO tickets_v6 (id, number, title, description, project_id, room_id, reporter_id, source_message_id,
        command_message_id, internal, status, external_key, change_seq, created_at, updated_at)
        SELECT id, number, title, description, project_id, room_id, reporter_id, source_message_id,
        command_message_id, internal, status, external_key, change_seq, created_at, updated_at FROM tickets;
    CREATE TABLE ticket_changes_v5 AS SELECT * FROM ticket_changes;
    DROP TABLE ticket_changes;
    DROP TABLE tickets;
    ALTER TABLE tickets_v6 RENAME TO tickets;
    CREATE INDEX tickets_by_room ON tickets(room_id, number);
    CREATE TABLE ticket_changes (
        ticket_id TEXT NOT NULL REFERENCES tickets(id),
        seq INTEGER NOT NULL,
        status_from TEXT NOT NULL,
        status_to TEXT NOT NULL,
        actor_id TEXT,
        source TEXT NOT NULL,
        at TEXT NOT NULL,
        PRIMARY KEY (ticket_id, seq)
    );
    INSERT INTO ticket_changes (ticket_id, seq, status_from, status_to, actor_id, source, at)
        SELECT ticket_id, seq, status_from, status_to, actor_id, source, at FROM ticket_changes_v5;
    DROP TABLE ticket_changes_v5;
    """,
]
SCHEMA_VERSION = len(_MIGRATIONS)
_T = TypeVar("_T")

_ROOMS_PER_QUERY = 400  # below SQLite's expression depth (1000) and bound-variable (999 before 3.32) limits
_MESSAGE_COLUMNS = (
    "id, room_id, seq, sender_id, text, client_msg_id, reply_to, internal, created_at, edited_at, deleted, mentions"
)


def _ts(value: datetime) -> str:
    """`2026-12-03T18:25:24.123456Z`: sorts as text in time order. isoformat is C code, strftime ~4x slower."""
    return value.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def _dt(value: str | None) -> datetime | None:
    if value is None:
        return None
    # fromisoformat (3.11+ reads the `Z`) is C code; strptime is Python, ~20x slower, and history pages parse
    # two timestamps per message.
    return datetime.fromisoformat(value).astimezone(UTC)


def _user(row: sqlite3.Row) -> User:
    return User(
        id=row["id"],
        username=row["username"],
        name=row["name"],
        org=row["org"],
        kind=row["kind"],
        roles=json.loads(row["roles"]),
        active=bool(row["active"]),
        created_at=_dt(row["created_at"]) or datetime.now(UTC),
        email=row["email"],
        skills=json.loads(row["skills"]),
        duty=json.loads(row["duty"]),
        max_sessions=row["max_sessions"],
        tokens_after=_dt(row["tokens_after"]),
    )


def _project(row: sqlite3.Row) -> Project:
    return Project(
        id=row["id"],
        external_id=row["external_id"],
        name=row["name"],
        client_org=row["client_org"],
        products=json.loads(row["products"]),
        stage=row["stage"],
        created_at=_dt(row["created_at"]) or datetime.now(UTC),
        room_id=row["room_id"],
        unstaffed=json.loads(row["unstaffed"]),
    )


def _session(row: sqlite3.Row) -> ExpertSession:
    return ExpertSession(
        room_id=row["room_id"],
        client_id=row["client_id"],
        product=row["product"],
        status=row["status"],
        requested_at=_dt(row["requested_at"]) or datetime.now(UTC),
        requested_by=row["requested_by"],
        expert_id=row["expert_id"],
        assigned_at=_dt(row["assigned_at"]),
        closed_at=_dt(row["closed_at"]),
        rating=row["rating"],
        comment=row["comment"],
    )


def _room(row: sqlite3.Row) -> Room:
    return Room(
        id=row["id"],
        kind=row["kind"],
        title=row["title"],
        project_id=row["project_id"],
        read_only=bool(row["read_only"]),
        last_seq=row["last_seq"],
        created_at=_dt(row["created_at"]) or datetime.now(UTC),
    )


def _membership(row: sqlite3.Row) -> Membership:
    return Membership(
        room_id=row["room_id"],
        user_id=row["user_id"],
        role=row["role"],
        last_read_seq=row["last_read_seq"],
        joined_at=_dt(row["joined_at"]) or datetime.now(UTC),
    )


def _message(row: sqlite3.Row | tuple[Any, ...]) -> Message:
    (mid, room_id, seq, sender_id, text, client_msg_id, reply_to, internal, created, edited, deleted, mentions) = row
    return Message(
        id=mid,
        room_id=room_id,
        seq=seq,
        sender_id=sender_id,
        text=text,
        client_msg_id=client_msg_id,
        reply_to=reply_to,
        internal=bool(internal),
        created_at=_dt(created) or datetime.now(UTC),
        edited_at=_dt(edited),
        deleted=bool(deleted),
        mentions=[] if mentions == "[]" else json.loads(mentions),  # most messages mention nobody
    )


def _mention_email(row: sqlite3.Row) -> MentionEmail:
    return MentionEmail(
        user_id=row["user_id"],
        message_id=row["message_id"],
        room_id=row["room_id"],
        queued_at=_dt(row["queued_at"]) or datetime.now(UTC),
        state=row["state"],
        done_at=_dt(row["done_at"]),
    )


def _invitation(row: sqlite3.Row) -> Invitation:
    return Invitation(
        token_hash=row["token_hash"],
        user_id=row["user_id"],
        created_at=_dt(row["created_at"]) or datetime.now(UTC),
        expires_at=_dt(row["expires_at"]) or datetime.now(UTC),
        used_at=_dt(row["used_at"]),
        revoked_at=_dt(row["revoked_at"]),
    )


def _ticket(row: sqlite3.Row) -> Ticket:
    return Ticket(
        id=row["id"],
        number=row["number"],
        title=row["title"],
        description=row["description"],
        room_id=row["room_id"],
        reporter_id=row["reporter_id"],
        source_message_id=row["source_message_id"],
        command_message_id=row["command_message_id"],
        created_at=_dt(row["created_at"]) or datetime.now(UTC),
        updated_at=_dt(row["updated_at"]) or datetime.now(UTC),
        project_id=row["project_id"],
        internal=bool(row["internal"]),
        status=row["status"],
        external_key=row["external_key"],
        change_seq=row["change_seq"],
        external_version=row["external_version"],
        pushed=tuple(json.loads(row["pushed"])),
    )


def _ticket_change(row: sqlite3.Row) -> TicketChange:
    return TicketChange(
        ticket_id=row["ticket_id"],
        seq=row["seq"],
        status_from=row["status_from"],
        status_to=row["status_to"],
        actor_id=row["actor_id"],
        source=row["source"],
        at=_dt(row["at"]) or datetime.now(UTC),
    )


@dataclass(slots=True)
class _Append:
    """One append_message waiting for the next group commit: the row (seq to be filled in) and the caller's future,
    which gets the new seq, or the stored Message if (room, sender, client_msg_id) was there already."""

    values: tuple[Any, ...]
    done: asyncio.Future[Message | int]


def _stored_message(tx: sqlite3.Connection, room_id: str, sender_id: str, client_msg_id: str) -> Message | None:
    found = tx.execute(
        f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE room_id = ? AND sender_id = ? AND client_msg_id = ?",
        (room_id, sender_id, client_msg_id),
    ).fetchone()
    return _message(tuple(found)) if found is not None else None


def _append_one(tx: sqlite3.Connection, request: tuple[Any, ...]) -> Message | int:
    """A new message takes two statements, the room's seq bumped and the row inserted, each atomic; an insert that
    fails or finds the message already stored gives its seq back. So one message's failure leaves the rest of its
    batch alone without a savepoint. Every statement is a trip out of and back into the GIL, which the busy event
    loop holds: under load each costs up to the interpreter's switch interval, so commits are kept to few of them.
    A repeat of (room, sender, client_msg_id) returns the stored message."""
    *values, into_read_only = request
    message_id, room_id, _, sender_id, text, client_msg_id, *rest = values
    bumped = tx.execute(
        "UPDATE rooms SET last_seq = last_seq + 1 WHERE id = ? AND (read_only = 0 OR ?) RETURNING last_seq",
        (room_id, int(into_read_only)),
    ).fetchone()
    if bumped is None:  # no such room, or closed: a retry of a message stored before it closed still gets it
        stored = _stored_message(tx, room_id, sender_id, client_msg_id)
        if stored is not None:
            return stored
        if tx.execute("SELECT 1 FROM rooms WHERE id = ?", (room_id,)).fetchone() is not None:
            raise RoomClosed(room_id)
        raise KeyError(room_id)
    seq = int(bumped[0])
    try:
        inserted = tx.execute(
            f"INSERT INTO messages ({_MESSAGE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,NULL,0,?)"
            " ON CONFLICT (room_id, sender_id, client_msg_id) DO NOTHING",
            (message_id, room_id, seq, sender_id, text, client_msg_id, *rest),
        ).rowcount
        stored = None if inserted else _stored_message(tx, room_id, sender_id, client_msg_id)
    except BaseException:
        tx.execute("UPDATE rooms SET last_seq = last_seq - 1 WHERE id = ?", (room_id,))
        raise
    if stored is None:
        return seq
    tx.execute("UPDATE rooms SET last_seq = last_seq - 1 WHERE id = ?", (room_id,))  # a repeat takes no seq
    return stored


def _append_batch(values: list[tuple[Any, ...]], tx: sqlite3.Connection) -> list[Message | int | Exception]:
    """Runs on the writer's thread, inside `_write`'s transaction."""
    results: list[Message | int | Exception] = []
    for row in values:
        try:
            results.append(_append_one(tx, row))
        except Exception as exc:  # this message only: the others in the batch go on
            results.append(exc)
    return results


def _placeholders(values: Iterable[Any]) -> str:
    return ",".join("?" for _ in values)


class SQLiteStore(Store):
    backend = "sqlite"

    def __init__(self, path: Path | str) -> None:
        if str(path) == ":memory:":
            # Its two connections would each get their own, empty database.
            raise ValueError("the SQLite store needs a file; ':memory:' is not supported")
        self.path = str(path)
        self._writer: aiosqlite.Connection | None = None
        self._data_version: int | None = None  # the writer's last `PRAGMA data_version` (changed_elsewhere)
        self._reader: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()
        self._appends: list[_Append] = []  # waiting for the next group commit (_commit_appends)
        self._append_task: asyncio.Task[None] | None = None

    # lifecycle -----------------------------------------------------------------------------------
    async def _connect(self) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        conn.row_factory = sqlite3.Row
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA synchronous=FULL")
        await conn.execute("PRAGMA foreign_keys=ON")
        await conn.execute("PRAGMA busy_timeout=5000")
        return conn

    async def open(self) -> None:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._writer = await self._connect()
        try:
            await self._migrate(self._writer)
            self._reader = await self._connect()
            self._data_version = await self._writer_data_version()
        except BaseException:
            # A refused or broken data dir must not leave a connection (and its thread) behind.
            await self._writer.close()
            self._writer = None
            raise

    async def _migrate(self, conn: aiosqlite.Connection) -> None:
        async with conn.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        version = row[0] if row else 0
        if version > SCHEMA_VERSION:
            raise RuntimeError(f"the data dir has schema version {version}, newer than this server's {SCHEMA_VERSION}")
        for number in range(version, SCHEMA_VERSION):
            await conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _MIGRATIONS[number].split(";"):
                    if statement.strip():
                        await conn.execute(statement)
                await conn.execute(f"PRAGMA user_version = {number + 1}")
                await conn.execute("COMMIT")
            except BaseException:
                await conn.execute("ROLLBACK")
                raise

    async def close(self) -> None:
        if self._append_task is not None:  # appends already accepted are committed (or failed) first
            await asyncio.shield(self._append_task)
        async with self._write_lock:
            for conn in (self._reader, self._writer):
                if conn is not None:
                    await conn.close()
            self._reader = self._writer = None

    async def ping(self) -> None:
        await self._fetchone("SELECT 1")

    async def _writer_data_version(self) -> int:
        if self._writer is None:
            raise RuntimeError("store is not open")
        [row] = await self._writer.execute_fetchall("PRAGMA data_version")
        return int(row[0])

    async def changed_elsewhere(self) -> bool:
        # `PRAGMA data_version` on a connection changes when any *other* connection commits. Asked on the writer,
        # whose own commits do not count and beside which the reader never writes, it changes only when another
        # process (the CLI, another server) has written.
        async with self._write_lock:
            version = await self._writer_data_version()
        changed = version != self._data_version
        self._data_version = version
        if changed:
            self.users_version += 1
            self.access_version += 1
        return changed

    # helpers -------------------------------------------------------------------------------------
    @property
    def _r(self) -> aiosqlite.Connection:
        if self._reader is None:
            raise RuntimeError("store is not open")
        return self._reader

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._write_lock:
            conn = self._writer
            if conn is None:
                raise RuntimeError("store is not open")
            try:
                await conn.execute("BEGIN IMMEDIATE")
                yield conn
                await conn.execute("COMMIT")
            except BaseException:
                # Also when cancelled while BEGIN or COMMIT was queued: aiosqlite still runs it, and a
                # transaction left open would refuse every later write. rollback() is queued after it
                # and does nothing when no transaction is open.
                await conn.rollback()
                raise

    async def _write(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run `work` as one write transaction in one round trip to the writer's thread: `BEGIN IMMEDIATE`, the
        statements, `COMMIT` (or `ROLLBACK` if it raises) all run there in one call, where `_transaction` takes a
        round trip (a queue put, a thread wake-up, an event-loop turn) per statement. The commit is done (durable:
        WAL, synchronous=FULL) when this returns. If the caller is cancelled meanwhile, the thread still finishes
        the call, commit or rollback, so no transaction is left open."""
        async with self._write_lock:
            conn = self._writer
            if conn is None:
                raise RuntimeError("store is not open")

            def run() -> _T:
                raw = conn._conn  # the sqlite3 connection, used only on aiosqlite's own thread
                raw.execute("BEGIN IMMEDIATE")
                try:
                    result = work(raw)
                except BaseException:
                    raw.rollback()
                    raise
                raw.execute("COMMIT")
                return result

            return await conn._execute(run)  # type: ignore[no-untyped-call,no-any-return]

    # Each `await` on an aiosqlite call is one round trip to its thread (a queue put, a wake-up of the event loop
    # through its self-pipe). `execute_fetchall` runs the query and reads its rows in one trip, where
    # `async with execute(...) as cur: await cur.fetchone()` takes three (execute, fetch, close).
    async def _fetchone(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Row | None:
        rows = list(await self._r.execute_fetchall(sql, tuple(params)))
        return rows[0] if rows else None

    async def _fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        return list(await self._r.execute_fetchall(sql, tuple(params)))

    # users ---------------------------------------------------------------------------------------
    async def create_user(self, user: User, password_hash: str | None = None) -> User:
        try:
            async with self._transaction() as tx:
                await tx.execute(
                    "INSERT INTO users (id, username, name, org, kind, roles, active, password_hash, created_at,"
                    " email, skills, duty, max_sessions) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        user.id,
                        user.username,
                        user.name,
                        user.org,
                        user.kind,
                        json.dumps(user.roles),
                        int(user.active),
                        password_hash,
                        _ts(user.created_at),
                        user.email,
                        json.dumps(user.skills, ensure_ascii=False),
                        json.dumps(user.duty, ensure_ascii=False),
                        user.max_sessions,
                    ),
                )
        except sqlite3.IntegrityError as exc:
            raise DuplicateKey(f"username {user.username!r} is taken") from exc
        return user

    async def get_user(self, user_id: str) -> User | None:
        row = await self._fetchone("SELECT * FROM users WHERE id = ?", (user_id,))
        return _user(row) if row else None

    async def get_users(self, user_ids: list[str]) -> dict[str, User]:
        ids = list(dict.fromkeys(user_ids))
        if not ids:
            return {}
        rows = await self._fetchall(f"SELECT * FROM users WHERE id IN ({_placeholders(ids)})", ids)
        return {row["id"]: _user(row) for row in rows}

    async def get_user_by_username(self, username: str) -> User | None:
        row = await self._fetchone("SELECT * FROM users WHERE username = ?", (username,))
        return _user(row) if row else None

    async def list_users(self) -> list[User]:
        return [_user(row) for row in await self._fetchall("SELECT * FROM users ORDER BY username")]

    async def update_user(
        self,
        user_id: str,
        *,
        name: str | None = None,
        org: str | None = None,
        roles: list[str] | None = None,
        active: bool | None = None,
        email: str | None = None,
        skills: list[str] | None = None,
        duty: list[str] | None = None,
        max_sessions: int | None = None,
        tokens_after: datetime | None = None,
    ) -> User | None:
        given = {
            "tokens_after": _ts(tokens_after) if tokens_after is not None else None,
            "name": name,
            "org": org,
            "roles": roles,
            "active": active,
            "email": email,
            "skills": skills,
            "duty": duty,
            "max_sessions": max_sessions,
        }
        changes = {
            column: json.dumps(value, ensure_ascii=False) if isinstance(value, list) else value
            for column, value in given.items()
            if value is not None
        }
        if changes:
            assignments = ", ".join(f"{column} = ?" for column in changes)
            try:
                async with self._transaction() as tx:
                    await tx.execute(f"UPDATE users SET {assignments} WHERE id = ?", (*changes.values(), user_id))
            finally:  # also after a failed commit: whether it landed is then unknown
                self.users_version += 1
        return await self.get_user(user_id)

    async def get_password_hash(self, user_id: str) -> str | None:
        row = await self._fetchone("SELECT password_hash FROM users WHERE id = ?", (user_id,))
        return row["password_hash"] if row else None

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        try:
            async with self._transaction() as tx:
                await tx.execute("UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, user_id))
        finally:
            self.users_version += 1

    async def count_users(self) -> int:
        row = await self._fetchone("SELECT COUNT(*) AS n FROM users")
        return int(row["n"]) if row else 0

    # projects ------------------------------------------------------------------------------------
    async def create_project(self, project: Project) -> Project:
        try:
            async with self._transaction() as tx:
                await tx.execute(
                    "INSERT INTO projects (id, external_id, name, client_org, products, stage, created_at,"
                    " room_id, unstaffed) VALUES (?,?,?,?,?,?,?,?,?)",
                    (
                        project.id,
                        project.external_id,
                        project.name,
                        project.client_org,
                        json.dumps(project.products, ensure_ascii=False),
                        project.stage,
                        _ts(project.created_at),
                        project.room_id,
                        json.dumps(project.unstaffed),
                    ),
                )
        except sqlite3.IntegrityError as exc:
            raise DuplicateKey(f"project {project.external_id!r} exists") from exc
        return project

    async def get_projects(self, project_ids: list[str]) -> dict[str, Project]:
        ids = list(dict.fromkeys(project_ids))
        if not ids:
            return {}
        rows = await self._fetchall(f"SELECT * FROM projects WHERE id IN ({_placeholders(ids)})", ids)
        return {row["id"]: _project(row) for row in rows}

    async def get_project_by_external_id(self, external_id: str) -> Project | None:
        row = await self._fetchone("SELECT * FROM projects WHERE external_id = ?", (external_id,))
        return _project(row) if row else None

    async def list_projects(self) -> list[Project]:
        return [_project(row) for row in await self._fetchall("SELECT * FROM projects ORDER BY created_at, id")]

    async def update_project(
        self,
        project_id: str,
        *,
        stage: Stage | None = None,
        room_id: str | None = None,
        unstaffed: list[str] | None = None,
        expected_stage: Stage | None = None,
    ) -> Project | None:
        given = {
            "stage": stage,
            "room_id": room_id,
            "unstaffed": json.dumps(unstaffed) if unstaffed is not None else None,
        }
        changes = {column: value for column, value in given.items() if value is not None}
        async with self._transaction() as tx:
            if changes:
                where, params = "id = ?", [project_id]
                if expected_stage is not None:
                    where, params = "id = ? AND stage = ?", [project_id, expected_stage]
                cur = await tx.execute(
                    f"UPDATE projects SET {', '.join(f'{c} = ?' for c in changes)} WHERE {where}",
                    (*changes.values(), *params),
                )
                if cur.rowcount == 0:
                    return None
        projects = await self.get_projects([project_id])
        return projects.get(project_id)

    async def record_assignment(self, project_id: str, user_id: str, role: str, at: datetime) -> None:
        async with self._transaction() as tx:
            await tx.execute(
                "INSERT OR REPLACE INTO assignments (project_id, user_id, role, assigned_at) VALUES (?,?,?,?)",
                (project_id, user_id, role, _ts(at)),
            )

    async def assignment_loads(self, user_ids: list[str]) -> dict[str, tuple[int, datetime | None]]:
        ids = list(dict.fromkeys(user_ids))
        loads: dict[str, tuple[int, datetime | None]] = {uid: (0, None) for uid in ids}
        if not ids:
            return loads
        rows = await self._fetchall(
            # Projects, not assignments: someone in two roles of one project has one project more, not two.
            "SELECT a.user_id, COUNT(DISTINCT CASE WHEN p.stage != 'closed' THEN p.id END) AS open_count,"
            " MAX(a.assigned_at) AS last_at FROM assignments a JOIN projects p ON p.id = a.project_id"
            f" WHERE a.user_id IN ({_placeholders(ids)}) GROUP BY a.user_id",
            ids,
        )
        for row in rows:
            loads[row["user_id"]] = (int(row["open_count"] or 0), _dt(row["last_at"]))
        return loads

    async def claim_delivery(self, source: str, delivery_id: str, result: str, at: datetime) -> str | None:
        async with self._transaction() as tx:
            async with tx.execute(
                "SELECT result FROM deliveries WHERE source = ? AND delivery_id = ?", (source, delivery_id)
            ) as cur:
                row = await cur.fetchone()
            if row is not None:
                return str(row[0])
            await tx.execute(
                "INSERT INTO deliveries (source, delivery_id, result, received_at) VALUES (?,?,?,?)",
                (source, delivery_id, result, _ts(at)),
            )
        return None

    # audit ---------------------------------------------------------------------------------------
    async def append_audit(self, entry: AuditEntry) -> None:
        async with self._transaction() as tx:
            await tx.execute(
                "INSERT INTO audit_log (id, at, actor_id, action, outcome, room_id, target_id, detail)"
                " VALUES (?,?,?,?,?,?,?,?)",
                (
                    entry.id,
                    _ts(entry.at),
                    entry.actor_id,
                    entry.action,
                    entry.outcome,
                    entry.room_id,
                    entry.target_id,
                    json.dumps(entry.detail, ensure_ascii=False),
                ),
            )

    async def list_audit(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        actor_id: str | None = None,
        room_id: str | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        where, params = ["1 = 1"], []
        if since is not None:
            where.append("at >= ?")
            params.append(_ts(since))
        if until is not None:
            where.append("at < ?")
            params.append(_ts(until))
        if actor_id is not None:
            where.append("actor_id = ?")
            params.append(actor_id)
        if room_id is not None:
            where.append("room_id = ?")
            params.append(room_id)
        rows = await self._fetchall(
            f"SELECT * FROM audit_log WHERE {' AND '.join(where)} ORDER BY at DESC, rowid DESC LIMIT ?",
            (*params, limit),
        )
        return [
            AuditEntry(
                id=row["id"],
                at=_dt(row["at"]) or datetime.now(UTC),
                actor_id=row["actor_id"],
                action=row["action"],
                outcome=row["outcome"],
                room_id=row["room_id"],
                target_id=row["target_id"],
                detail=json.loads(row["detail"]),
            )
            for row in rows
        ]

    # expert desk ---------------------------------------------------------------------------------
    async def create_expert_session(self, session: ExpertSession) -> ExpertSession:
        async with self._transaction() as tx:
            await tx.execute(
                "INSERT INTO expert_sessions (room_id, client_id, product, status, requested_at, requested_by)"
                " VALUES (?,?,?,?,?,?)",
                (
                    session.room_id,
                    session.client_id,
                    session.product,
                    session.status,
                    _ts(session.requested_at),
                    session.requested_by,
                ),
            )
        return session

    async def get_expert_session(self, room_id: str) -> ExpertSession | None:
        row = await self._fetchone("SELECT * FROM expert_sessions WHERE room_id = ?", (room_id,))
        return _session(row) if row else None

    async def list_expert_sessions(
        self,
        *,
        status: str | None = None,
        product: str | None = None,
        expert_id: str | None = None,
        client_id: str | None = None,
    ) -> list[ExpertSession]:
        where, params = ["1 = 1"], []
        for column, value in (
            ("status", status),
            ("product", product),
            ("expert_id", expert_id),
            ("client_id", client_id),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        rows = await self._fetchall(
            f"SELECT * FROM expert_sessions WHERE {' AND '.join(where)} ORDER BY requested_at, rowid", params
        )
        return [_session(row) for row in rows]

    async def assign_expert_session(self, room_id: str, candidate_ids: list[str], at: datetime) -> str | None:
        ids = list(dict.fromkeys(candidate_ids))
        if not ids:
            return None
        async with self._transaction() as tx:
            async with tx.execute("SELECT status FROM expert_sessions WHERE room_id = ?", (room_id,)) as cur:
                row = await cur.fetchone()
            if row is None or row[0] != "queued":
                return None
            async with tx.execute(
                "SELECT u.id FROM users u"
                " LEFT JOIN expert_sessions s ON s.expert_id = u.id AND s.status = 'active'"
                f" WHERE u.id IN ({_placeholders(ids)}) AND u.active = 1"
                " GROUP BY u.id HAVING COUNT(s.room_id) < u.max_sessions"
                " ORDER BY COUNT(s.room_id),"
                " (SELECT MAX(assigned_at) FROM expert_sessions WHERE expert_id = u.id) IS NOT NULL,"
                " (SELECT MAX(assigned_at) FROM expert_sessions WHERE expert_id = u.id), u.id"
                " LIMIT 1",
                ids,
            ) as cur:
                chosen = await cur.fetchone()
            if chosen is None:
                return None
            expert_id = str(chosen[0])
            await tx.execute(
                "UPDATE expert_sessions SET status = 'active', expert_id = ?, assigned_at = ? WHERE room_id = ?",
                (expert_id, _ts(at), room_id),
            )
        return expert_id

    async def update_expert_session(
        self,
        room_id: str,
        *,
        expected_status: str,
        status: str | None = None,
        product: str | None = None,
        expert_id: str | None = None,
        clear_expert: bool = False,
        closed_at: datetime | None = None,
    ) -> ExpertSession | None:
        changes: dict[str, Any] = {}
        if status is not None:
            changes["status"] = status
        if product is not None:
            changes["product"] = product
        if expert_id is not None:
            changes["expert_id"] = expert_id
            changes["assigned_at"] = _ts(datetime.now(UTC))
        if clear_expert:
            changes["expert_id"] = None
            changes["assigned_at"] = None
        if closed_at is not None:
            changes["closed_at"] = _ts(closed_at)
        async with self._transaction() as tx:
            cur = await tx.execute(
                f"UPDATE expert_sessions SET {', '.join(f'{c} = ?' for c in changes)} WHERE room_id = ? AND status = ?",
                (*changes.values(), room_id, expected_status),
            )
            if cur.rowcount == 0:
                return None
        return await self.get_expert_session(room_id)

    async def rate_expert_session(self, room_id: str, client_id: str, rating: int, comment: str | None) -> bool:
        async with self._transaction() as tx:
            cur = await tx.execute(
                "UPDATE expert_sessions SET rating = ?, comment = ?"
                " WHERE room_id = ? AND client_id = ? AND status = 'closed' AND rating IS NULL",
                (rating, comment, room_id, client_id),
            )
            return cur.rowcount > 0

    # rooms and members ---------------------------------------------------------------------------
    async def create_room(self, room: Room) -> Room:
        async with self._transaction() as tx:
            await tx.execute(
                "INSERT INTO rooms (id, kind, title, project_id, read_only, last_seq, created_at)"
                " VALUES (?,?,?,?,?,0,?)",
                (room.id, room.kind, room.title, room.project_id, int(room.read_only), _ts(room.created_at)),
            )
        room.last_seq = 0
        return room

    async def update_room(
        self, room_id: str, *, title: str | None = None, read_only: bool | None = None
    ) -> Room | None:
        given = {"title": title, "read_only": int(read_only) if read_only is not None else None}
        changes = {column: value for column, value in given.items() if value is not None}
        if changes:
            try:
                async with self._transaction() as tx:
                    await tx.execute(
                        f"UPDATE rooms SET {', '.join(f'{c} = ?' for c in changes)} WHERE id = ?",
                        (*changes.values(), room_id),
                    )
            finally:
                self.access_version += 1
        return await self.get_room(room_id)

    async def get_room(self, room_id: str) -> Room | None:
        row = await self._fetchone("SELECT * FROM rooms WHERE id = ?", (room_id,))
        return _room(row) if row else None

    async def add_member(self, membership: Membership) -> bool:
        try:
            return await self._add_member(membership)
        finally:  # counted once the write is over (also when it failed: whether it landed is then unknown)
            self.access_version += 1

    async def _add_member(self, membership: Membership) -> bool:
        async with self._transaction() as tx:
            async with tx.execute(
                "SELECT 1 FROM memberships WHERE room_id = ? AND user_id = ?",
                (membership.room_id, membership.user_id),
            ) as cur:
                existed = await cur.fetchone() is not None
            if existed:
                await tx.execute(
                    "UPDATE memberships SET role = ? WHERE room_id = ? AND user_id = ?",
                    (membership.role, membership.room_id, membership.user_id),
                )
            else:
                await tx.execute(
                    "INSERT INTO memberships (room_id, user_id, role, last_read_seq, joined_at) VALUES (?,?,?,?,?)",
                    (
                        membership.room_id,
                        membership.user_id,
                        membership.role,
                        membership.last_read_seq,
                        _ts(membership.joined_at),
                    ),
                )
        return not existed

    async def remove_member(self, room_id: str, user_id: str) -> bool:
        try:
            return await self._remove_member(room_id, user_id)
        finally:  # counted once the write is over (also when it failed: whether it landed is then unknown)
            self.access_version += 1

    async def _remove_member(self, room_id: str, user_id: str) -> bool:
        async with self._transaction() as tx:
            cur = await tx.execute("DELETE FROM memberships WHERE room_id = ? AND user_id = ?", (room_id, user_id))
            return cur.rowcount > 0

    async def get_membership(self, room_id: str, user_id: str) -> Membership | None:
        row = await self._fetchone("SELECT * FROM memberships WHERE room_id = ? AND user_id = ?", (room_id, user_id))
        return _membership(row) if row else None

    async def list_members(self, room_id: str) -> list[Membership]:
        rows = await self._fetchall(
            "SELECT * FROM memberships WHERE room_id = ? ORDER BY joined_at, user_id", (room_id,)
        )
        return [_membership(row) for row in rows]

    async def list_memberships(self, user_id: str) -> list[Membership]:
        rows = await self._fetchall("SELECT * FROM memberships WHERE user_id = ? ORDER BY room_id", (user_id,))
        return [_membership(row) for row in rows]

    async def set_last_read(self, room_id: str, user_id: str, seq: int) -> int | None:
        async with self._transaction() as tx:
            await tx.execute(
                "UPDATE memberships SET last_read_seq = MAX(last_read_seq,"
                " MIN(?, (SELECT last_seq FROM rooms WHERE id = ?)))"
                " WHERE room_id = ? AND user_id = ?",
                (seq, room_id, room_id, user_id),
            )
            async with tx.execute(
                "SELECT last_read_seq FROM memberships WHERE room_id = ? AND user_id = ?", (room_id, user_id)
            ) as cur:
                row = await cur.fetchone()
        return int(row[0]) if row else None

    async def room_summaries(self, user_id: str, *, include_internal: bool) -> list[RoomSummary]:
        visible = "" if include_internal else " AND internal = 0"
        rows = await self._fetchall(
            "SELECT r.*, m.role, m.last_read_seq, m.joined_at,"
            f" (SELECT COUNT(*) FROM messages WHERE room_id = r.id AND seq > m.last_read_seq"
            f"   AND sender_id != m.user_id AND deleted = 0{visible}) AS unread,"
            f" (SELECT MAX(seq) FROM messages WHERE room_id = r.id{visible}) AS last_visible_seq"
            " FROM memberships m JOIN rooms r ON r.id = m.room_id WHERE m.user_id = ?",
            (user_id,),
        )
        last_keys = [(row["id"], row["last_visible_seq"]) for row in rows if row["last_visible_seq"]]
        last_messages: dict[str, Message] = {}
        # In chunks: a chain of ORs deeper than 1000 is refused ("Expression tree is too large").
        for start in range(0, len(last_keys), _ROOMS_PER_QUERY):
            chunk = last_keys[start : start + _ROOMS_PER_QUERY]
            clause = " OR ".join("(room_id = ? AND seq = ?)" for _ in chunk)
            params = [value for key in chunk for value in key]
            for row in await self._fetchall(
                f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE {clause}",
                params,
            ):
                last_messages[row["room_id"]] = _message(tuple(row))
        summaries = [
            RoomSummary(
                room=_room(row),
                membership=Membership(
                    room_id=row["id"],
                    user_id=user_id,
                    role=row["role"],
                    last_read_seq=row["last_read_seq"],
                    joined_at=_dt(row["joined_at"]) or datetime.now(UTC),
                ),
                unread=row["unread"],
                last_message=last_messages.get(row["id"]),
            )
            for row in rows
        ]
        summaries.sort(
            key=lambda s: _ts(s.last_message.created_at if s.last_message else s.room.created_at), reverse=True
        )
        return summaries

    # messages ------------------------------------------------------------------------------------
    async def append_message(
        self,
        *,
        message_id: str,
        room_id: str,
        sender_id: str,
        text: str,
        client_msg_id: str,
        created_at: datetime,
        reply_to: str | None = None,
        internal: bool = False,
        mentions: list[str] | None = None,
        into_read_only: bool = False,
    ) -> tuple[Message, bool]:
        mentioned = list(dict.fromkeys(mentions or []))
        request = _Append(
            (
                message_id,
                room_id,
                None,
                sender_id,
                text,
                client_msg_id,
                reply_to,
                int(internal),
                _ts(created_at),
                json.dumps(mentioned),
                into_read_only,
            ),
            asyncio.get_running_loop().create_future(),
        )
        self._appends.append(request)
        if self._append_task is None:
            self._append_task = asyncio.get_running_loop().create_task(self._commit_appends())
        stored = await request.done  # a cancelled caller: the batch it is in is still committed (or not) whole
        if isinstance(stored, Message):
            return stored, False
        seq = stored
        message = Message(
            id=message_id,
            room_id=room_id,
            seq=seq,
            sender_id=sender_id,
            text=text,
            client_msg_id=client_msg_id,
            created_at=_dt(_ts(created_at)) or created_at,
            reply_to=reply_to,
            internal=internal,
            mentions=mentioned,
        )
        return message, True

    async def _commit_appends(self) -> None:
        """Group commit: the appends that arrived while the last commit was under way go in one transaction (one
        fsync), each failing alone (its room gone, its row refused: `_append_one`). Taken in arrival
        order, so seqs follow the order of the append_message calls; each caller hears of its message only when the
        transaction holding it is committed."""
        try:
            while self._appends:
                batch, self._appends = self._appends, []
                try:
                    results = await self._write(partial(_append_batch, [r.values for r in batch]))
                except BaseException as exc:
                    for r in batch:
                        if not r.done.done():
                            r.done.set_exception(exc if isinstance(exc, Exception) else RuntimeError("store closed"))
                    if not isinstance(exc, Exception):
                        raise
                    continue
                for r, result in zip(batch, results, strict=True):
                    if r.done.done():
                        continue
                    if isinstance(result, BaseException):
                        r.done.set_exception(result)
                    else:
                        r.done.set_result(result)
        finally:
            self._append_task = None

    async def find_message(self, room_id: str, sender_id: str, client_msg_id: str) -> Message | None:
        row = await self._fetchone(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE room_id = ? AND sender_id = ? AND client_msg_id = ?",
            (room_id, sender_id, client_msg_id),
        )
        return _message(tuple(row)) if row else None

    async def get_message(self, message_id: str) -> Message | None:
        row = await self._fetchone(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE id = ?",
            (message_id,),
        )
        return _message(tuple(row)) if row else None

    async def list_messages(
        self,
        room_id: str,
        *,
        before_seq: int | None = None,
        after_seq: int | None = None,
        limit: int = 50,
        include_internal: bool = True,
    ) -> tuple[list[Message], bool]:
        where = ["room_id = ?"]
        params: list[Any] = [room_id]
        if before_seq is not None:
            where.append("seq < ?")
            params.append(before_seq)
        if after_seq is not None:
            where.append("seq > ?")
            params.append(after_seq)
        if not include_internal:
            where.append("internal = 0")
        order = "ASC" if after_seq is not None else "DESC"
        rows = await self._fetchall(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE {' AND '.join(where)} ORDER BY seq {order} LIMIT ?",
            (*params, limit + 1),
        )
        has_more = len(rows) > limit
        messages = [_message(tuple(row)) for row in rows[:limit]]
        if order == "DESC":
            messages.reverse()
        return messages, has_more

    async def _replace_text(
        self, message_id: str, text: str, when: datetime, by: str, *, delete: bool, mentions: list[str] | None = None
    ) -> Message | None:
        async with self._transaction() as tx:
            async with tx.execute("SELECT text FROM messages WHERE id = ?", (message_id,)) as cur:
                row = await cur.fetchone()
            if row is None:
                return None
            await tx.execute(
                "INSERT INTO message_revisions (message_id, text, replaced_at, replaced_by) VALUES (?,?,?,?)",
                (message_id, row[0], _ts(when), by),
            )
            if delete:
                await tx.execute(
                    "UPDATE messages SET text = '', deleted = 1, mentions = '[]' WHERE id = ?", (message_id,)
                )
            elif mentions is not None:
                await tx.execute(
                    "UPDATE messages SET text = ?, edited_at = ?, mentions = ? WHERE id = ?",
                    (text, _ts(when), json.dumps(list(dict.fromkeys(mentions))), message_id),
                )
            else:
                await tx.execute(
                    "UPDATE messages SET text = ?, edited_at = ? WHERE id = ?", (text, _ts(when), message_id)
                )
        return await self.get_message(message_id)

    async def edit_message(
        self, message_id: str, text: str, edited_at: datetime, editor_id: str, *, mentions: list[str] | None = None
    ) -> Message | None:
        return await self._replace_text(message_id, text, edited_at, editor_id, delete=False, mentions=mentions)

    async def delete_message(self, message_id: str, deleted_at: datetime, deleter_id: str) -> Message | None:
        return await self._replace_text(message_id, "", deleted_at, deleter_id, delete=True)

    async def list_revisions(self, message_id: str) -> list[Revision]:
        rows = await self._fetchall(
            "SELECT * FROM message_revisions WHERE message_id = ? ORDER BY rowid", (message_id,)
        )
        return [
            Revision(
                message_id=row["message_id"],
                text=row["text"],
                replaced_at=_dt(row["replaced_at"]) or datetime.now(UTC),
                replaced_by=row["replaced_by"],
            )
            for row in rows
        ]

    # bots' state ---------------------------------------------------------------------------------
    async def get_bot_value(self, bot: str, key: str) -> Any | None:
        row = await self._fetchone("SELECT value FROM bot_state WHERE bot = ? AND key = ?", (bot, key))
        return json.loads(row["value"]) if row is not None else None

    async def set_bot_value(
        self, bot: str, key: str, value: Any, *, max_keys: int, only_if_absent: bool = False
    ) -> bool:
        encoded = json.dumps(value, ensure_ascii=False)
        async with self._transaction() as conn:
            async with conn.execute("SELECT 1 FROM bot_state WHERE bot = ? AND key = ?", (bot, key)) as cur:
                exists = await cur.fetchone() is not None
            if exists and only_if_absent:
                return False
            if not exists:
                async with conn.execute("SELECT COUNT(*) FROM bot_state WHERE bot = ?", (bot,)) as cur:
                    row = await cur.fetchone()
                if row is not None and row[0] >= max_keys:
                    raise BotStateFull(bot)
            await conn.execute(
                "INSERT INTO bot_state (bot, key, value) VALUES (?, ?, ?)"
                " ON CONFLICT (bot, key) DO UPDATE SET value = excluded.value",
                (bot, key, encoded),
            )
            return True

    async def delete_bot_value(self, bot: str, key: str) -> None:
        async with self._transaction() as conn:
            await conn.execute("DELETE FROM bot_state WHERE bot = ? AND key = ?", (bot, key))

    # mention emails ------------------------------------------------------------------------------
    async def queue_mention_emails(self, message_id: str, room_id: str, user_ids: list[str], at: datetime) -> list[str]:
        queued: list[str] = []
        async with self._transaction() as tx:
            for user_id in dict.fromkeys(user_ids):
                cur = await tx.execute(
                    "INSERT OR IGNORE INTO mention_emails (user_id, message_id, room_id, queued_at, state)"
                    " VALUES (?,?,?,?,'pending')",
                    (user_id, message_id, room_id, _ts(at)),
                )
                if cur.rowcount > 0:
                    queued.append(user_id)
        return queued

    async def list_mention_emails(self, *, state: MentionEmailState, user_id: str | None = None) -> list[MentionEmail]:
        where, params = ["state = ?"], [str(state)]
        if user_id is not None:
            where.append("user_id = ?")
            params.append(user_id)
        rows = await self._fetchall(
            f"SELECT * FROM mention_emails WHERE {' AND '.join(where)} ORDER BY queued_at, rowid", params
        )
        return [_mention_email(row) for row in rows]

    async def finish_mention_emails(
        self,
        user_id: str,
        message_ids: list[str],
        *,
        state: MentionEmailState,
        expected: MentionEmailState,
        at: datetime,
    ) -> list[str]:
        moved: list[str] = []
        async with self._transaction() as tx:
            for message_id in dict.fromkeys(message_ids):
                cur = await tx.execute(
                    "UPDATE mention_emails SET state = ?, done_at = ?"
                    " WHERE user_id = ? AND message_id = ? AND state = ?",
                    (state, None if state == "pending" else _ts(at), user_id, message_id, expected),
                )
                if cur.rowcount > 0:
                    moved.append(message_id)
        return moved

    # invitations ---------------------------------------------------------------------------------
    async def create_invitation(self, invitation: Invitation) -> Invitation:
        async with self._transaction() as tx:
            await tx.execute(
                "UPDATE invitations SET revoked_at = ? WHERE user_id = ? AND used_at IS NULL AND revoked_at IS NULL",
                (_ts(invitation.created_at), invitation.user_id),
            )
            await tx.execute(
                "INSERT INTO invitations (token_hash, user_id, created_at, expires_at) VALUES (?,?,?,?)",
                (
                    invitation.token_hash,
                    invitation.user_id,
                    _ts(invitation.created_at),
                    _ts(invitation.expires_at),
                ),
            )
        return invitation

    async def get_invitation(self, token_hash: str) -> Invitation | None:
        row = await self._fetchone("SELECT * FROM invitations WHERE token_hash = ?", (token_hash,))
        return _invitation(row) if row else None

    async def accept_invitation(self, token_hash: str, password_hash: str, at: datetime) -> Invitation | None:
        try:
            return await self._accept_invitation(token_hash, password_hash, at)
        finally:  # counted once the write is over (also when it failed: whether it landed is then unknown)
            self.users_version += 1

    async def _accept_invitation(self, token_hash: str, password_hash: str, at: datetime) -> Invitation | None:
        async with self._transaction() as tx:
            cur = await tx.execute(
                "UPDATE invitations SET used_at = ? WHERE token_hash = ? AND used_at IS NULL AND revoked_at IS NULL"
                " AND expires_at > ? AND user_id IN (SELECT id FROM users WHERE active = 1)",
                (_ts(at), token_hash, _ts(at)),
            )
            if cur.rowcount == 0:
                return None
            await tx.execute(
                "UPDATE users SET password_hash = ?, tokens_after = ?"
                " WHERE id = (SELECT user_id FROM invitations WHERE token_hash = ?)",
                (password_hash, _ts(at), token_hash),
            )
        return await self.get_invitation(token_hash)

    # tickets -------------------------------------------------------------------------------------
    async def create_ticket(self, ticket: Ticket) -> tuple[Ticket, bool]:
        async with self._transaction() as tx:
            async with tx.execute(
                "SELECT * FROM tickets WHERE source_message_id = ? AND internal = ?",
                (ticket.source_message_id, int(ticket.internal)),
            ) as cur:
                row = await cur.fetchone()
            if row is not None:
                return _ticket(row), False
            async with tx.execute("SELECT COALESCE(MAX(number), 0) + 1 FROM tickets") as cur:
                numbered = await cur.fetchone()
            number = int(numbered[0]) if numbered else 1
            await tx.execute(
                "INSERT INTO tickets (id, number, title, description, project_id, room_id, reporter_id,"
                " source_message_id, command_message_id, internal, status, external_key, change_seq, created_at,"
                " updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    ticket.id,
                    number,
                    ticket.title,
                    ticket.description,
                    ticket.project_id,
                    ticket.room_id,
                    ticket.reporter_id,
                    ticket.source_message_id,
                    ticket.command_message_id,
                    int(ticket.internal),
                    ticket.status,
                    ticket.external_key,
                    ticket.change_seq,
                    _ts(ticket.created_at),
                    _ts(ticket.updated_at),
                ),
            )
        ticket.number = number
        return ticket, True

    async def discard_ticket(self, ticket_id: str) -> bool:
        async with self._transaction() as tx:
            cur = await tx.execute(
                "DELETE FROM tickets WHERE id = ? AND external_key IS NULL AND change_seq = 0", (ticket_id,)
            )
            return cur.rowcount > 0

    async def set_ticket_external_key(self, ticket_id: str, external_key: str) -> Ticket | None:
        try:
            async with self._transaction() as tx:
                await tx.execute("UPDATE tickets SET external_key = ? WHERE id = ?", (external_key, ticket_id))
        except sqlite3.IntegrityError as exc:
            raise DuplicateKey(f"another ticket has the external key {external_key!r}") from exc
        row = await self._fetchone("SELECT * FROM tickets WHERE id = ?", (ticket_id,))
        return _ticket(row) if row else None

    async def get_ticket(self, number: int) -> Ticket | None:
        row = await self._fetchone("SELECT * FROM tickets WHERE number = ?", (number,))
        return _ticket(row) if row else None

    async def get_ticket_by_external_key(self, external_key: str) -> Ticket | None:
        row = await self._fetchone("SELECT * FROM tickets WHERE external_key = ?", (external_key,))
        return _ticket(row) if row else None

    async def list_tickets(self, room_id: str, *, include_internal: bool) -> list[Ticket]:
        where = "room_id = ?" if include_internal else "room_id = ? AND internal = 0"
        rows = await self._fetchall(f"SELECT * FROM tickets WHERE {where} ORDER BY number", (room_id,))
        return [_ticket(row) for row in rows]

    async def change_ticket_status(
        self,
        ticket_id: str,
        *,
        expected_status: TicketStatus,
        status: TicketStatus,
        actor_id: str | None,
        source: str,
        at: datetime,
        sync: TicketSync | None = None,
    ) -> tuple[Ticket, TicketChange] | None:
        async with self._transaction() as tx:
            cur = await tx.execute(
                "UPDATE tickets SET status = ?, change_seq = change_seq + 1, updated_at = ?"
                " WHERE id = ? AND status = ?",
                (status, _ts(at), ticket_id, expected_status),
            )
            if cur.rowcount and sync is not None:
                await tx.execute(
                    "UPDATE tickets SET external_version = ?, pushed = ? WHERE id = ?",
                    (sync.external_version, json.dumps(list(sync.pushed)), ticket_id),
                )
            if cur.rowcount == 0:
                return None
            async with tx.execute("SELECT * FROM tickets WHERE id = ?", (ticket_id,)) as found:
                row = await found.fetchone()
            assert row is not None
            ticket = _ticket(row)
            change = TicketChange(
                ticket_id=ticket_id,
                seq=ticket.change_seq,
                status_from=expected_status,
                status_to=status,
                actor_id=actor_id,
                source=source,
                at=at,
            )
            await tx.execute(
                "INSERT INTO ticket_changes (ticket_id, seq, status_from, status_to, actor_id, source, at)"
                " VALUES (?,?,?,?,?,?,?)",
                (ticket_id, change.seq, change.status_from, change.status_to, actor_id, source, _ts(at)),
            )
        return ticket, change

    async def set_ticket_sync(self, ticket_id: str, sync: TicketSync) -> None:
        async with self._transaction() as tx:
            await tx.execute(
                "UPDATE tickets SET external_version = ?, pushed = ? WHERE id = ?",
                (sync.external_version, json.dumps(list(sync.pushed)), ticket_id),
            )

    async def list_ticket_changes(self, ticket_id: str) -> list[TicketChange]:
        rows = await self._fetchall("SELECT * FROM ticket_changes WHERE ticket_id = ? ORDER BY seq", (ticket_id,))
        return [_ticket_change(row) for row in rows]
