"""What only the SQLite backend promises: its schema version, its durability settings, its limits."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from chatserver.models import Membership, Room, User
from chatserver.storage import open_store
from chatserver.storage.sqlite import SCHEMA_VERSION, SQLiteStore


def _pragma(path: Path, name: str) -> object:
    with sqlite3.connect(path) as conn:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]


def _set_user_version(path: Path, version: int) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.execute(f"PRAGMA user_version = {version}")
    finally:
        conn.close()


async def test_the_data_file_carries_the_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "data" / "chat.db"
    store = SQLiteStore(path)
    await store.open()
    await store.close()

    assert SCHEMA_VERSION >= 1
    assert _pragma(path, "user_version") == SCHEMA_VERSION


async def test_reopening_an_existing_data_dir_keeps_its_data_and_version(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    store = open_store(f"sqlite:///{path}")
    await store.open()
    await store.create_user(User(id="u_1", username="am.wang", name="王晓明", org="云帆银行", kind="staff"))
    await store.close()

    again = open_store(f"sqlite:///{path}")
    await again.open()
    try:
        user = await again.get_user("u_1")
        assert user is not None and user.name == "王晓明"
        assert await again.count_users() == 1
    finally:
        await again.close()
    assert _pragma(path, "user_version") == SCHEMA_VERSION


async def test_a_data_file_from_a_newer_server_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    store = SQLiteStore(path)
    await store.open()
    await store.create_user(User(id="u_1", username="am.wang", name="王晓明", org="云帆银行", kind="staff"))
    await store.close()
    _set_user_version(path, SCHEMA_VERSION + 1)
    threads_before = threading.active_count()

    refused = SQLiteStore(path)
    with pytest.raises(RuntimeError, match=rf"schema version {SCHEMA_VERSION + 1}, newer than this server's"):
        await refused.open()

    assert _pragma(path, "user_version") == SCHEMA_VERSION + 1
    # No connection is left behind: its thread would keep the process (the CLI) from exiting.
    for _ in range(100):
        if threading.active_count() <= threads_before:
            break
        await asyncio.sleep(0.01)
    assert threading.active_count() <= threads_before
    with pytest.raises(RuntimeError, match="not open"):
        await refused.ping()


async def test_both_connections_use_wal_and_synchronous_full(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    store = SQLiteStore(path)
    await store.open()
    try:
        for conn in (store._writer, store._reader):
            assert conn is not None
            async with conn.execute("PRAGMA journal_mode") as cur:
                assert (await cur.fetchone())[0] == "wal"  # type: ignore[index]
            async with conn.execute("PRAGMA synchronous") as cur:
                assert (await cur.fetchone())[0] == 2  # type: ignore[index]  # FULL
            async with conn.execute("PRAGMA foreign_keys") as cur:
                assert (await cur.fetchone())[0] == 1  # type: ignore[index]
    finally:
        await store.close()
    assert _pragma(path, "journal_mode") == "wal"  # kept in the file


def _fill_many_rooms(path: Path, user_id: str, rooms: int) -> None:
    """Bulk rows in one transaction (the contract methods would commit, and fsync, each one)."""
    now = "2026-12-03T08:15:00.000000Z"
    conn = sqlite3.connect(path)
    try:
        with conn:
            conn.executemany(
                "INSERT INTO rooms (id, kind, title, project_id, read_only, last_seq, created_at)"
                " VALUES (?, 'project', ?, NULL, 0, 1, ?)",
                [(f"r_{i:05d}", f"房间{i}", now) for i in range(rooms)],
            )
            conn.executemany(
                "INSERT INTO memberships (room_id, user_id, role, last_read_seq, joined_at) VALUES (?, ?, 'x', 0, ?)",
                [(f"r_{i:05d}", user_id, now) for i in range(rooms)],
            )
            conn.executemany(
                "INSERT INTO messages (id, room_id, seq, sender_id, text, client_msg_id, reply_to, internal,"
                " created_at, edited_at, deleted) VALUES (?, ?, 1, ?, ?, ?, NULL, 0, ?, NULL, 0)",
                [(f"m_{i:05d}", f"r_{i:05d}", user_id, f"消息{i}", f"c{i}", now) for i in range(rooms)],
            )
    finally:
        conn.close()


async def test_room_summaries_work_for_a_user_in_more_than_a_thousand_rooms(tmp_path: Path) -> None:
    """A bot or the after-sales desk sits in every project room; closed rooms stay as archives."""
    path = tmp_path / "chat.db"
    store = SQLiteStore(path)
    await store.open()
    await store.create_user(User(id="u_bot", username="bot.ticket", name="工单机器人", org="云帆银行", kind="bot"))
    await store.close()
    _fill_many_rooms(path, "u_bot", 1200)

    await store.open()
    try:
        summaries = await store.room_summaries("u_bot", include_internal=True)
        assert len(summaries) == 1200
        assert all(s.last_message is not None and s.last_message.room_id == s.room.id for s in summaries)
        assert {s.last_message.text for s in summaries if s.last_message} == {f"消息{i}" for i in range(1200)}
        # and the store still works normally on top of the bulk rows
        await store.create_room(Room(id="r_new", kind="expert", title="专家咨询"))
        assert await store.add_member(Membership(room_id="r_new", user_id="u_bot", role="x"))
        message, _ = await store.append_message(
            message_id="m_new",
            room_id="r_new",
            sender_id="u_bot",
            text="新的",
            client_msg_id="c-new",
            created_at=datetime.now(UTC),
        )
        assert message.seq == 1
        assert len(await store.room_summaries("u_bot", include_internal=True)) == 1201
    finally:
        await store.close()


def test_an_in_memory_database_is_refused_at_once() -> None:
    """Its reader and writer connections would each see their own empty database."""
    with pytest.raises(ValueError, match="needs a file"):
        open_store("sqlite:///:memory:")


async def test_migration_6_keeps_tickets_and_their_history_and_allows_one_ticket_per_visibility(
    tmp_path: Path,
) -> None:
    from chatserver.models import Ticket
    from chatserver.storage.sqlite import _MIGRATIONS

    path = tmp_path / "chat.db"
    conn = sqlite3.connect(path)
    try:
        for migration in _MIGRATIONS[:5]:
            conn.executescript(migration)
        conn.execute("PRAGMA user_version = 5")
        conn.execute(
            "INSERT INTO users (id, username, name, org, kind, roles, active, created_at)"
            " VALUES ('u_1', 'xh.li', '李娜', '星河', 'client', '[]', 1, '2026')"
        )
        conn.execute("INSERT INTO rooms (id, kind, title, created_at) VALUES ('r_1', 'project', '星河', '2026')")
        conn.execute(
            "INSERT INTO tickets (id, number, title, description, room_id, reporter_id, source_message_id,"
            " command_message_id, internal, status, external_key, change_seq, created_at, updated_at)"
            " VALUES ('t_1', 1, '证书', '', 'r_1', 'u_1', 'm_1', 'm_1', 0, 'in_progress', 'OPS-1', 1,"
            " '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z')"
        )
        conn.execute(
            "INSERT INTO ticket_changes VALUES ('t_1', 1, 'open', 'in_progress', NULL, 'webhook',"
            " '2026-01-01T00:00:00.000000Z')"
        )
        conn.commit()
    finally:
        conn.close()

    store = SQLiteStore(path)
    await store.open()
    try:
        ticket = await store.get_ticket(1)
        assert ticket is not None and ticket.status == "in_progress" and ticket.external_key == "OPS-1"
        assert ticket.external_version is None and ticket.pushed == ()
        [change] = await store.list_ticket_changes("t_1")
        assert (change.status_from, change.status_to, change.source) == ("open", "in_progress", "webhook")
        now = datetime.now(UTC)
        internal = Ticket("t_2", 0, "内部", "", "r_1", "u_1", "m_1", "m_2", now, now, internal=True)
        made, created = await store.create_ticket(internal)
        assert created and made.number == 2
        again, created = await store.create_ticket(Ticket("t_3", 0, "再一次", "", "r_1", "u_1", "m_1", "m_3", now, now))
        assert not created and again.id == "t_1"
    finally:
        await store.close()
    assert _pragma(path, "user_version") == SCHEMA_VERSION


async def test_concurrent_appends_are_group_committed_in_call_order_each_failing_alone(tmp_path: Path) -> None:
    """Appends that arrive together share one transaction (group commit), with seqs in call order; a repeated
    client_msg_id in the same batch gets the stored message; an append to a missing room fails alone."""
    store = SQLiteStore(tmp_path / "chat.db")
    await store.open()
    try:
        await store.create_user(User(id="u_1", username="am.wang", name="王晓明", org="云帆银行", kind="staff"))
        await store.create_room(Room(id="r_1", kind="project", title="星河"))
        await store.add_member(Membership(room_id="r_1", user_id="u_1", role="account_manager"))
        now = datetime.now(UTC)
        transactions = 0
        write = store._write

        async def counted(work: Any) -> Any:
            nonlocal transactions
            transactions += 1
            return await write(work)

        store._write = counted  # type: ignore[method-assign]

        def append(i: int, *, room: str = "r_1", cmid: str | None = None, mid: str = "", sender: str = "u_1") -> Any:
            return store.append_message(
                message_id=mid or f"m_{i}",
                room_id=room,
                sender_id=sender,
                text=f"第{i}条",
                client_msg_id=cmid or f"c{i}",
                created_at=now,
            )

        results = await asyncio.gather(
            *[append(i) for i in range(20)],
            append(20, cmid="c3"),
            append(21, room="r_gone"),
            append(22),
            append(23, mid="m_5"),  # the row itself is refused (its id is taken): its seq is given back
            append(24, sender="u_gone"),  # no such sender (foreign key)
            append(25),
            return_exceptions=True,
        )
        made = [r for r in results[:20]]
        assert [(m.id, m.seq, created) for m, created in made] == [(f"m_{i}", i + 1, True) for i in range(20)]
        assert results[20] == (made[3][0], False)
        assert isinstance(results[21], KeyError)
        assert results[22][0].seq == 21 and results[22][1] is True
        assert isinstance(results[23], sqlite3.IntegrityError) and isinstance(results[24], sqlite3.IntegrityError)
        assert results[25][0].seq == 22 and results[25][1] is True
        page, _ = await store.list_messages("r_1", limit=100)
        assert [m.seq for m in page] == list(range(1, 23))
        assert [m.id for m in page if m.seq == 6] == ["m_5"]  # the refused row changed nothing
        assert (await store.get_room("r_1")).last_seq == 22
        assert transactions < 26  # appends that waited together were committed together
    finally:
        await store.close()


async def test_changed_elsewhere_sees_other_processes_writes_only(tmp_path: Path) -> None:
    here, there = SQLiteStore(tmp_path / "chat.db"), SQLiteStore(tmp_path / "chat.db")
    await here.open()
    await there.open()
    try:
        assert not await here.changed_elsewhere()
        await here.create_user(User(id="u_1", username="am.wang", name="王晓明", org="云帆银行", kind="staff"))
        assert not await here.changed_elsewhere()  # its own writes are counted by its own counters
        users, access = here.users_version, here.access_version
        await there.update_user("u_1", name="王晓明远")  # another process (the CLI)
        assert await here.changed_elsewhere()
        assert here.users_version > users and here.access_version > access  # every cached copy is dropped
        assert not await here.changed_elsewhere()
        await there.update_user("u_1", name="王晓明")
    finally:
        await here.close()
        await there.close()
    again = SQLiteStore(tmp_path / "chat.db")
    await again.open()  # a write made before the first question counts too: it is compared with the open
    try:
        other = SQLiteStore(tmp_path / "chat.db")
        await other.open()
        await other.update_user("u_1", name="王晓明远")
        await other.close()
        assert await again.changed_elsewhere()
    finally:
        await again.close()
