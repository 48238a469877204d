"""The Store contract (chatserver/storage/base.py): every backend must pass every test here.

The `store` fixture (tests/storage/conftest.py) runs each test once per backend.
"""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chatserver.models import (
    AuditEntry,
    ExpertSession,
    Invitation,
    Membership,
    Message,
    Project,
    Room,
    Ticket,
    User,
    new_id,
)
from chatserver.storage import BotStateFull, DuplicateKey, Revision, RoomClosed, Store

from .conftest import Backend

T0 = datetime(2026, 12, 3, 8, 15, 0, 123456, tzinfo=UTC)
_clock = itertools.count()


def tick() -> datetime:
    """Distinct, increasing times, so ordering by time is well defined."""
    return T0 + timedelta(seconds=next(_clock))


async def add_user(store: Store, username: str, *, kind: str = "staff", roles: list[str] | None = None) -> User:
    user = User(
        id=new_id("u"),
        username=username,
        name=f"用户{username}",
        org="云帆银行交易银行部" if kind == "staff" else "星河制造集团有限公司",
        kind=kind,  # type: ignore[arg-type]
        roles=roles if roles is not None else (["account_manager"] if kind == "staff" else ["client_member"]),
        created_at=tick(),
    )
    return await store.create_user(user)


async def add_room(
    store: Store, *members: User, title: str = "星河制造集团 · 银企直连", read_only: bool = False
) -> Room:
    room = await store.create_room(Room(id=new_id("r"), kind="project", title=title, read_only=read_only))
    for member in members:
        await store.add_member(Membership(room_id=room.id, user_id=member.id, role="member", joined_at=tick()))
    return room


async def send(
    store: Store,
    room: Room,
    sender: User,
    text: str = "测试环境的证书什么时候能发？",
    *,
    client_msg_id: str | None = None,
    internal: bool = False,
    reply_to: str | None = None,
) -> Message:
    message, created = await store.append_message(
        message_id=new_id("m"),
        room_id=room.id,
        sender_id=sender.id,
        text=text,
        client_msg_id=client_msg_id or new_id("c"),
        created_at=tick(),
        reply_to=reply_to,
        internal=internal,
    )
    assert created
    return message


def seqs(messages: list[Message]) -> list[int]:
    return [m.seq for m in messages]


# lifecycle ---------------------------------------------------------------------------------------


async def test_an_open_store_answers_ping(store: Store) -> None:
    await store.ping()


# users -------------------------------------------------------------------------------------------


async def test_a_created_user_reads_back_by_id_and_by_username(store: Store) -> None:
    wang = await add_user(store, "am.wang", roles=["account_manager", "admin"])
    li = await add_user(store, "xh.li", kind="client")

    assert await store.get_user(wang.id) == wang
    assert await store.get_user_by_username("xh.li") == li
    assert (await store.get_user(li.id)).kind == "client"  # type: ignore[union-attr]
    assert await store.get_user("u_missing") is None
    assert await store.get_user_by_username("nobody") is None
    assert await store.get_users([wang.id, "u_missing", li.id, wang.id]) == {wang.id: wang, li.id: li}
    assert await store.get_users([]) == {}
    assert sorted(u.username for u in await store.list_users()) == ["am.wang", "xh.li"]
    assert await store.count_users() == 2


async def test_a_taken_username_is_refused_and_the_first_user_kept(store: Store) -> None:
    first = await add_user(store, "am.wang")
    impostor = User(id=new_id("u"), username="am.wang", name="冒名者", org="外部", kind="client")

    with pytest.raises(DuplicateKey):
        await store.create_user(impostor, "hash-of-impostor")

    assert await store.get_user(impostor.id) is None
    assert await store.get_user_by_username("am.wang") == first
    assert await store.count_users() == 1


async def test_update_user_changes_only_the_given_fields(store: Store) -> None:
    user = await add_user(store, "ss.liu")

    renamed = await store.update_user(user.id, name="刘婷婷")
    assert renamed is not None
    assert (renamed.name, renamed.org, renamed.roles, renamed.active) == ("刘婷婷", user.org, user.roles, True)

    changed = await store.update_user(
        user.id, org="云帆银行总行", roles=["service_specialist", "developer"], active=False
    )
    assert changed is not None
    assert (changed.name, changed.org, changed.roles, changed.active) == (
        "刘婷婷",
        "云帆银行总行",
        ["service_specialist", "developer"],
        False,
    )
    assert await store.get_user(user.id) == changed
    assert await store.get_user_by_username("ss.liu") == changed
    assert await store.update_user(user.id) == changed  # nothing to change: the user as they are
    assert await store.update_user("u_missing", name="谁") is None


async def test_password_hashes_are_kept_per_user(store: Store) -> None:
    with_password = await store.create_user(
        User(id=new_id("u"), username="admin", name="赵敏", org="云帆银行", kind="staff", roles=["admin"]),
        "$argon2id$v=19$first",
    )
    bot = await add_user(store, "bot.ticket", kind="bot", roles=[])

    assert await store.get_password_hash(with_password.id) == "$argon2id$v=19$first"
    assert await store.get_password_hash(bot.id) is None
    assert await store.get_password_hash("u_missing") is None

    await store.set_password_hash(with_password.id, "$argon2id$v=19$second")
    assert await store.get_password_hash(with_password.id) == "$argon2id$v=19$second"
    assert await store.get_password_hash(bot.id) is None


# projects ----------------------------------------------------------------------------------------


async def test_projects_read_back_and_external_ids_are_unique(store: Store) -> None:
    project = await store.create_project(
        Project(
            id=new_id("p"),
            external_id="SMP-2026-0017",
            name="星河制造集团银企直连",
            client_org="星河制造集团有限公司",
            products=["银企直连", "司库管理系统"],
            stage="implementation",
            created_at=tick(),
        )
    )
    twin = Project(
        id=new_id("p"), external_id="SMP-2026-0017", name="重复", client_org="别家", products=[], stage="presales"
    )

    with pytest.raises(DuplicateKey):
        await store.create_project(twin)

    assert await store.get_projects([project.id, twin.id, project.id]) == {project.id: project}
    assert await store.get_projects([]) == {}


# rooms and members -------------------------------------------------------------------------------


async def test_rooms_read_back_with_their_flags(store: Store) -> None:
    project = await store.create_project(
        Project(id=new_id("p"), external_id="SMP-1", name="瑞丰", client_org="瑞丰物流", products=[], stage="closed")
    )
    created = await store.create_room(
        Room(id=new_id("r"), kind="project", title="瑞丰物流 · 结项", project_id=project.id, read_only=True)
    )
    expert = await store.create_room(Room(id=new_id("r"), kind="expert", title="专家咨询"))

    assert created.last_seq == 0
    room = await store.get_room(created.id)
    assert room is not None
    assert (room.kind, room.title, room.project_id, room.read_only, room.last_seq) == (
        "project",
        "瑞丰物流 · 结项",
        project.id,
        True,
        0,
    )
    other = await store.get_room(expert.id)
    assert other is not None and (other.kind, other.project_id, other.read_only) == ("expert", None, False)
    assert await store.get_room("r_missing") is None


async def test_add_member_reports_a_new_member_once_and_can_change_the_role(store: Store) -> None:
    user = await add_user(store, "se.chen")
    room = await add_room(store)

    assert await store.add_member(Membership(room_id=room.id, user_id=user.id, role="solution_expert")) is True
    assert await store.add_member(Membership(room_id=room.id, user_id=user.id, role="solution_expert")) is False
    assert await store.add_member(Membership(room_id=room.id, user_id=user.id, role="developer")) is False

    membership = await store.get_membership(room.id, user.id)
    assert membership is not None
    assert (membership.room_id, membership.user_id, membership.role, membership.last_read_seq) == (
        room.id,
        user.id,
        "developer",
        0,
    )
    assert [(m.user_id, m.role) for m in await store.list_members(room.id)] == [(user.id, "developer")]

    assert await store.remove_member(room.id, user.id) is True
    assert await store.remove_member(room.id, user.id) is False
    assert await store.get_membership(room.id, user.id) is None
    assert await store.list_members(room.id) == []
    assert await store.list_memberships(user.id) == []


async def test_members_and_memberships_list_only_their_own_rooms_and_people(store: Store) -> None:
    wang = await add_user(store, "am.wang")
    li = await add_user(store, "xh.li", kind="client")
    zhou = await add_user(store, "rf.zhou", kind="client")
    xinghe = await add_room(store, wang, li, title="星河")
    ruifeng = await add_room(store, wang, zhou, title="瑞丰")

    assert {m.user_id for m in await store.list_members(xinghe.id)} == {wang.id, li.id}
    assert {m.user_id for m in await store.list_members(ruifeng.id)} == {wang.id, zhou.id}
    assert {m.room_id for m in await store.list_memberships(wang.id)} == {xinghe.id, ruifeng.id}
    assert [m.room_id for m in await store.list_memberships(li.id)] == [xinghe.id]
    assert await store.get_membership(ruifeng.id, li.id) is None
    assert await store.list_memberships("u_missing") == []


# appending messages ------------------------------------------------------------------------------


async def test_append_assigns_seq_one_two_three_per_room_independently(store: Store) -> None:
    wang = await add_user(store, "am.wang")
    a = await add_room(store, wang, title="A")
    b = await add_room(store, wang, title="B")

    order = [a, b, a, a, b]
    sent = [await send(store, room, wang, f"第{i}条") for i, room in enumerate(order)]

    assert [(m.room_id, m.seq) for m in sent] == [(a.id, 1), (b.id, 1), (a.id, 2), (a.id, 3), (b.id, 2)]
    assert (await store.get_room(a.id)).last_seq == 3  # type: ignore[union-attr]
    assert (await store.get_room(b.id)).last_seq == 2  # type: ignore[union-attr]


async def test_an_appended_message_is_stored_as_given(store: Store) -> None:
    wang = await add_user(store, "am.wang")
    room = await add_room(store, wang)
    first = await send(store, room, wang)
    when = tick()

    message, created = await store.append_message(
        message_id="m_fixed",
        room_id=room.id,
        sender_id=wang.id,
        text="请确认联调时间 ✅",
        client_msg_id="c-7d1",
        created_at=when,
        reply_to=first.id,
        internal=True,
    )

    assert created is True
    assert message == Message(
        id="m_fixed",
        room_id=room.id,
        seq=2,
        sender_id=wang.id,
        text="请确认联调时间 ✅",
        client_msg_id="c-7d1",
        created_at=when,
        reply_to=first.id,
        internal=True,
        edited_at=None,
        deleted=False,
    )
    assert await store.get_message("m_fixed") == message
    assert await store.get_message("m_missing") is None


async def test_a_repeated_client_msg_id_returns_the_stored_message_and_stores_nothing(store: Store) -> None:
    wang = await add_user(store, "am.wang")
    room = await add_room(store, wang)
    original = await send(store, room, wang, "原文", client_msg_id="retry-1")

    again, created = await store.append_message(
        message_id=new_id("m"),
        room_id=room.id,
        sender_id=wang.id,
        text="重发的文字",
        client_msg_id="retry-1",
        created_at=tick(),
    )

    assert created is False
    assert again == original
    assert (await store.get_room(room.id)).last_seq == 1  # type: ignore[union-attr]
    messages, _ = await store.list_messages(room.id)
    assert messages == [original]


async def test_the_same_client_msg_id_from_another_sender_or_room_is_a_new_message(store: Store) -> None:
    wang = await add_user(store, "am.wang")
    li = await add_user(store, "xh.li", kind="client")
    a = await add_room(store, wang, li, title="A")
    b = await add_room(store, wang, title="B")

    mine = await send(store, a, wang, client_msg_id="same")
    theirs = await send(store, a, li, client_msg_id="same")
    elsewhere = await send(store, b, wang, client_msg_id="same")

    assert len({mine.id, theirs.id, elsewhere.id}) == 3
    assert [(m.room_id, m.seq, m.sender_id) for m in (mine, theirs, elsewhere)] == [
        (a.id, 1, wang.id),
        (a.id, 2, li.id),
        (b.id, 1, wang.id),
    ]


async def test_concurrent_appends_get_unique_gap_free_seqs_per_room(store: Store) -> None:
    wang = await add_user(store, "am.wang")
    li = await add_user(store, "xh.li", kind="client")
    a = await add_room(store, wang, li, title="A")
    b = await add_room(store, wang, li, title="B")

    async def one(i: int) -> tuple[Message, bool]:
        return await store.append_message(
            message_id=f"m_{i:03d}",
            room_id=(a, b)[i % 2].id,
            sender_id=(wang, li)[i // 2 % 2].id,
            text=f"并发消息{i}",
            client_msg_id=f"c-{i}",
            created_at=T0,
        )

    results = await asyncio.gather(*(one(i) for i in range(200)))

    assert all(created for _, created in results)
    for room in (a, b):
        got = sorted(m.seq for m, _ in results if m.room_id == room.id)
        assert got == list(range(1, 101))
        stored, has_more = await store.list_messages(room.id, limit=100)
        assert seqs(stored) == list(range(1, 101)) and has_more is False
        assert {m.id for m in stored} == {m.id for m, _ in results if m.room_id == room.id}
        assert (await store.get_room(room.id)).last_seq == 100  # type: ignore[union-attr]


async def test_concurrent_retries_of_one_message_store_it_once(store: Store) -> None:
    wang = await add_user(store, "am.wang")
    room = await add_room(store, wang)

    results = await asyncio.gather(
        *(
            store.append_message(
                message_id=new_id("m"),
                room_id=room.id,
                sender_id=wang.id,
                text="只存一次",
                client_msg_id="retry-storm",
                created_at=T0,
            )
            for _ in range(20)
        )
    )

    assert sum(created for _, created in results) == 1
    assert len({m.id for m, _ in results}) == 1
    assert seqs((await store.list_messages(room.id))[0]) == [1]


async def test_a_cancelled_write_leaves_the_store_usable_and_seqs_gap_free(store: Store) -> None:
    """A caller may be cancelled (client gone, shutdown) at any point of a write; later writes must work."""
    wang = await add_user(store, "am.wang")
    room = await add_room(store, wang)

    for yields in range(8):
        task = asyncio.create_task(send(store, room, wang, f"会被取消的消息{yields}"))
        for _ in range(yields):
            await asyncio.sleep(0)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        after = await send(store, room, wang, f"取消之后{yields}")
        stored, _ = await store.list_messages(room.id, limit=100)
        assert seqs(stored) == list(range(1, len(stored) + 1))
        assert stored[-1] == after

    await store.update_user(wang.id, name="仍然可写")
    assert (await store.get_user(wang.id)).name == "仍然可写"  # type: ignore[union-attr]


# reading history ---------------------------------------------------------------------------------


@pytest.fixture
async def ten(store: Store) -> Room:
    """A room with messages seq 1..10, and a second room with its own messages."""
    wang = await add_user(store, "am.wang")
    room = await add_room(store, wang, title="十条")
    other = await add_room(store, wang, title="别的房间")
    for i in range(1, 11):
        await send(store, room, wang, f"第{i}条")
        if i % 3 == 0:
            await send(store, other, wang, "别的房间的消息")
    return room


@pytest.mark.parametrize(
    ("query", "expected", "has_more"),
    [
        ({"limit": 3}, [8, 9, 10], True),
        ({"limit": 10}, list(range(1, 11)), False),
        ({"limit": 50}, list(range(1, 11)), False),
        ({}, list(range(1, 11)), False),
        ({"before_seq": 8, "limit": 3}, [5, 6, 7], True),
        ({"before_seq": 4, "limit": 3}, [1, 2, 3], False),
        ({"before_seq": 3, "limit": 3}, [1, 2], False),
        ({"before_seq": 1, "limit": 3}, [], False),
        ({"after_seq": 0, "limit": 3}, [1, 2, 3], True),
        ({"after_seq": 6, "limit": 3}, [7, 8, 9], True),
        ({"after_seq": 7, "limit": 3}, [8, 9, 10], False),
        ({"after_seq": 10, "limit": 3}, [], False),
        ({"after_seq": 2, "before_seq": 9, "limit": 3}, [3, 4, 5], True),
        ({"after_seq": 2, "before_seq": 9, "limit": 6}, [3, 4, 5, 6, 7, 8], False),
        ({"after_seq": 4, "before_seq": 5, "limit": 3}, [], False),
    ],
)
async def test_history_pages(
    store: Store, ten: Room, query: dict[str, Any], expected: list[int], has_more: bool
) -> None:
    messages, more = await store.list_messages(ten.id, **query)

    assert seqs(messages) == expected
    assert more is has_more
    assert all(m.room_id == ten.id for m in messages)
    assert [m.text for m in messages] == [f"第{s}条" for s in expected]


async def test_catching_up_page_by_page_gets_every_message_once(store: Store, ten: Room) -> None:
    got: list[int] = []
    after, more = 0, True
    while more:
        page, more = await store.list_messages(ten.id, after_seq=after, limit=4)
        got += seqs(page)
        after = page[-1].seq
    assert got == list(range(1, 11))


async def test_history_without_internal_notes_hides_them_and_pages_over_the_rest(store: Store) -> None:
    wang = await add_user(store, "am.wang")
    room = await add_room(store, wang)
    for i in range(1, 9):
        await send(store, room, wang, f"第{i}条", internal=i in (2, 7, 8))

    visible, more = await store.list_messages(room.id, limit=3, include_internal=False)
    assert (seqs(visible), more) == ([4, 5, 6], True)
    older, more = await store.list_messages(room.id, before_seq=4, limit=3, include_internal=False)
    assert (seqs(older), more) == ([1, 3], False)
    newer, more = await store.list_messages(room.id, after_seq=6, include_internal=False)
    assert (seqs(newer), more) == ([], False)
    everything, _ = await store.list_messages(room.id, include_internal=True)
    assert seqs(everything) == list(range(1, 9))
    assert [m.seq for m in everything if m.internal] == [2, 7, 8]


# edits and deletes -------------------------------------------------------------------------------


async def test_an_edit_replaces_the_text_and_keeps_the_old_one_as_a_revision(store: Store) -> None:
    wang = await add_user(store, "am.wang")
    admin = await add_user(store, "admin", roles=["admin"])
    room = await add_room(store, wang, admin)
    message = await send(store, room, wang, "初稿")
    first_edit, second_edit = tick(), tick()

    edited = await store.edit_message(message.id, "第二稿", first_edit, wang.id)
    assert edited is not None
    assert (edited.id, edited.seq, edited.text, edited.edited_at, edited.deleted) == (
        message.id,
        1,
        "第二稿",
        first_edit,
        False,
    )
    assert edited.created_at == message.created_at
    again = await store.edit_message(message.id, "定稿", second_edit, admin.id)

    assert again is not None and again.text == "定稿" and again.edited_at == second_edit
    assert await store.get_message(message.id) == again
    assert await store.list_revisions(message.id) == [
        Revision(message_id=message.id, text="初稿", replaced_at=first_edit, replaced_by=wang.id),
        Revision(message_id=message.id, text="第二稿", replaced_at=second_edit, replaced_by=admin.id),
    ]
    assert (await store.get_room(room.id)).last_seq == 1  # type: ignore[union-attr]
    assert await store.edit_message("m_missing", "谁", tick(), wang.id) is None
    assert await store.list_revisions("m_missing") == []


async def test_a_delete_leaves_a_tombstone_with_its_seq_and_keeps_the_text_as_a_revision(store: Store) -> None:
    wang = await add_user(store, "am.wang")
    room = await add_room(store, wang)
    before = await send(store, room, wang, "前一条")
    doomed = await send(store, room, wang, "账号是 6222 0000 1234")
    when = tick()

    tombstone = await store.delete_message(doomed.id, when, wang.id)

    assert tombstone is not None
    assert (tombstone.id, tombstone.seq, tombstone.text, tombstone.deleted) == (doomed.id, 2, "", True)
    assert await store.get_message(doomed.id) == tombstone
    history, _ = await store.list_messages(room.id)
    assert history == [before, tombstone]
    assert await store.list_revisions(doomed.id) == [
        Revision(message_id=doomed.id, text="账号是 6222 0000 1234", replaced_at=when, replaced_by=wang.id)
    ]
    after = await send(store, room, wang, "后一条")
    assert after.seq == 3
    assert await store.delete_message("m_missing", tick(), wang.id) is None


# read markers ------------------------------------------------------------------------------------


async def test_the_read_marker_only_moves_forward_and_never_past_the_last_seq(store: Store) -> None:
    wang = await add_user(store, "am.wang")
    outsider = await add_user(store, "rf.zhou", kind="client")
    room = await add_room(store, wang)
    for _ in range(5):
        await send(store, room, wang)

    assert await store.set_last_read(room.id, wang.id, 3) == 3
    assert await store.set_last_read(room.id, wang.id, 2) == 3
    assert await store.set_last_read(room.id, wang.id, 0) == 3
    assert await store.set_last_read(room.id, wang.id, 99) == 5
    assert (await store.get_membership(room.id, wang.id)).last_read_seq == 5  # type: ignore[union-attr]
    await send(store, room, wang)
    await send(store, room, wang)
    assert await store.set_last_read(room.id, wang.id, 7) == 7

    assert await store.set_last_read(room.id, outsider.id, 3) is None
    assert await store.set_last_read("r_missing", wang.id, 3) is None
    assert await store.get_membership(room.id, outsider.id) is None


# room summaries ----------------------------------------------------------------------------------


async def test_room_summaries_count_unread_and_pick_the_last_visible_message(store: Store) -> None:
    me = await add_user(store, "xh.li")
    other = await add_user(store, "am.wang")
    stranger = await add_user(store, "rf.zhou")
    busy = await add_room(store, me, other, title="忙碌的房间")
    quiet = await add_room(store, me, other, title="安静的房间")
    notes_only = await add_room(store, me, other, title="只有内部备注")
    not_mine = await add_room(store, other, stranger, title="别人的房间")

    await send(store, busy, other, "1 已读")
    await store.set_last_read(busy.id, me.id, 1)
    await send(store, busy, other, "2 未读")
    await send(store, busy, other, "3 未读")
    await send(store, busy, me, "4 我自己发的")
    deleted = await send(store, busy, other, "5 已删除")
    await store.delete_message(deleted.id, tick(), other.id)
    last_public = await send(store, busy, me, "6 最后一条公开消息")
    last_note = await send(store, busy, other, "7 内部备注", internal=True)
    await send(store, notes_only, other, "内部备注", internal=True)
    await send(store, not_mine, other, "与我无关")
    await send(store, not_mine, stranger, "与我无关")

    staff_view = {s.room.id: s for s in await store.room_summaries(me.id, include_internal=True)}
    client_view = {s.room.id: s for s in await store.room_summaries(me.id, include_internal=False)}

    for view in (staff_view, client_view):
        assert set(view) == {busy.id, quiet.id, notes_only.id}
        assert view[busy.id].room.last_seq == 7
        assert view[busy.id].membership.user_id == me.id
        assert view[busy.id].membership.last_read_seq == 1
        assert view[busy.id].membership.role == "member"
        assert view[quiet.id].unread == 0 and view[quiet.id].last_message is None
    assert staff_view[busy.id].unread == 3  # 2, 3 and the note 7; not my 4 or 6, not the deleted 5
    assert staff_view[busy.id].last_message == last_note
    assert client_view[busy.id].unread == 2  # 2 and 3
    assert client_view[busy.id].last_message == last_public
    assert staff_view[notes_only.id].unread == 1 and staff_view[notes_only.id].last_message is not None
    assert client_view[notes_only.id].unread == 0 and client_view[notes_only.id].last_message is None

    theirs = {s.room.id: s for s in await store.room_summaries(other.id, include_internal=True)}
    assert set(theirs) == {busy.id, quiet.id, notes_only.id, not_mine.id}
    assert theirs[busy.id].unread == 2  # my 4 and 6: 5 was deleted, the rest are their own
    assert theirs[not_mine.id].unread == 1
    assert await store.room_summaries("u_missing", include_internal=True) == []


async def test_reading_up_to_the_end_clears_unread(store: Store) -> None:
    me = await add_user(store, "xh.li", kind="client")
    other = await add_user(store, "am.wang")
    room = await add_room(store, me, other)
    for _ in range(3):
        await send(store, room, other)

    [summary] = await store.room_summaries(me.id, include_internal=False)
    assert summary.unread == 3
    await store.set_last_read(room.id, me.id, 3)
    [summary] = await store.room_summaries(me.id, include_internal=False)
    assert (summary.unread, summary.membership.last_read_seq) == (0, 3)


# durability --------------------------------------------------------------------------------------


async def test_everything_is_still_there_after_closing_and_reopening(backend: Backend) -> None:
    store = await backend.open()
    wang = await store.create_user(
        User(id=new_id("u"), username="am.wang", name="王晓明", org="云帆银行", kind="staff", roles=["admin"]),
        "$argon2id$v=19$secret",
    )
    li = await add_user(store, "xh.li", kind="client")
    project = await store.create_project(
        Project(
            id=new_id("p"), external_id="SMP-9", name="星河", client_org="星河", products=["司库"], stage="presales"
        )
    )
    room = await store.create_room(Room(id=new_id("r"), kind="project", title="星河 · 司库", project_id=project.id))
    await store.add_member(Membership(room_id=room.id, user_id=wang.id, role="account_manager", joined_at=tick()))
    await store.add_member(Membership(room_id=room.id, user_id=li.id, role="client_contact", joined_at=tick()))
    first = await send(store, room, li, "你好", client_msg_id="hello")
    edited = await send(store, room, wang, "初稿")
    await store.edit_message(edited.id, "定稿", tick(), wang.id)
    gone = await send(store, room, li, "发错了")
    await store.delete_message(gone.id, tick(), li.id)
    await send(store, room, wang, "内部备注", internal=True)
    await store.set_last_read(room.id, li.id, 2)
    await store.update_user(li.id, active=False)

    snapshot = {
        "users": await store.list_users(),
        "hash": await store.get_password_hash(wang.id),
        "projects": await store.get_projects([project.id]),
        "room": await store.get_room(room.id),
        "members": await store.list_members(room.id),
        "messages": await store.list_messages(room.id),
        "revisions": [await store.list_revisions(m) for m in (edited.id, gone.id)],
        "summaries": await store.room_summaries(li.id, include_internal=False),
    }
    await store.close()

    reopened = await backend.open()
    try:
        assert {
            "users": await reopened.list_users(),
            "hash": await reopened.get_password_hash(wang.id),
            "projects": await reopened.get_projects([project.id]),
            "room": await reopened.get_room(room.id),
            "members": await reopened.list_members(room.id),
            "messages": await reopened.list_messages(room.id),
            "revisions": [await reopened.list_revisions(m) for m in (edited.id, gone.id)],
            "summaries": await reopened.room_summaries(li.id, include_internal=False),
        } == snapshot
        assert snapshot["room"].last_seq == 4  # type: ignore[union-attr]
        retry, created = await reopened.append_message(
            message_id=new_id("m"),
            room_id=room.id,
            sender_id=li.id,
            text="你好",
            client_msg_id="hello",
            created_at=tick(),
        )
        assert (created, retry) == (False, first)
        assert (await send(reopened, room, wang, "重开之后")).seq == 5
    finally:
        await reopened.close()


# issue 3: projects from the platform, staffing, audit, the expert desk ----------------------------


def a_project(external_id: str = "SMP-2026-0031", stage: str = "presales") -> Project:
    return Project(
        id=new_id("p"),
        external_id=external_id,
        name="银企直连",
        client_org="华岳能源股份有限公司",
        products=["银企直连"],
        stage=stage,  # type: ignore[arg-type]
        created_at=tick(),
    )


async def test_a_delivery_id_is_claimed_once_per_source_and_remembers_its_result(store: Store) -> None:
    assert await store.claim_delivery("platform", "d-1", "SMP-1", tick()) is None
    assert await store.claim_delivery("platform", "d-1", "SMP-2", tick()) == "SMP-1"
    assert await store.claim_delivery("tickets", "d-1", "T-9", tick()) is None  # another source, its own ids
    assert await store.claim_delivery("platform", "d-2", "SMP-2", tick()) is None

    results = await asyncio.gather(*(store.claim_delivery("platform", "d-3", f"r{i}", tick()) for i in range(8)))
    assert results.count(None) == 1
    winner = f"r{results.index(None)}"
    assert all(r in (None, winner) for r in results)


async def test_update_project_changes_the_given_fields_and_compares_the_stage_when_asked(store: Store) -> None:
    project = await store.create_project(a_project())

    moved = await store.update_project(project.id, stage="implementation", expected_stage="presales")
    assert moved is not None and moved.stage == "implementation"
    assert await store.update_project(project.id, stage="aftersales", expected_stage="presales") is None
    assert (await store.get_projects([project.id]))[project.id].stage == "implementation"

    staffed = await store.update_project(project.id, room_id="r_1", unstaffed=["developer", "after_sales"])
    assert staffed is not None
    assert (staffed.stage, staffed.room_id, staffed.unstaffed) == (
        "implementation",
        "r_1",
        ["developer", "after_sales"],
    )
    assert (await store.get_project_by_external_id("SMP-2026-0031")) == staffed
    assert await store.update_project(project.id) == staffed  # nothing given: nothing changes
    assert await store.update_project("p_missing", stage="closed") is None
    assert await store.update_project("p_missing", stage="closed", expected_stage="presales") is None
    assert [p.id for p in await store.list_projects()] == [project.id]


async def test_concurrent_compare_and_set_stage_moves_let_exactly_one_win(store: Store) -> None:
    project = await store.create_project(a_project())
    results = await asyncio.gather(
        *(store.update_project(project.id, stage="implementation", expected_stage="presales") for _ in range(6))
    )
    assert sum(r is not None for r in results) == 1


async def test_projects_list_oldest_first(store: Store) -> None:
    first = await store.create_project(a_project("SMP-1"))
    second = await store.create_project(a_project("SMP-2"))
    assert [p.id for p in await store.list_projects()] == [first.id, second.id]


async def test_assignment_loads_count_distinct_open_projects_and_the_last_assignment(store: Store) -> None:
    liu = await add_user(store, "ss.liu", roles=["service_specialist", "developer"])
    zhang = await add_user(store, "dev.zhang", roles=["developer"])
    idle = await add_user(store, "ss.idle", roles=["service_specialist"])
    open_one = await store.create_project(a_project("SMP-1", "implementation"))
    open_two = await store.create_project(a_project("SMP-2", "aftersales"))
    closed = await store.create_project(a_project("SMP-3", "closed"))

    t1, t2, t3, t4 = tick(), tick(), tick(), tick()
    await store.record_assignment(open_one.id, liu.id, "service_specialist", t1)
    await store.record_assignment(open_one.id, liu.id, "developer", t2)  # one project, two roles: counts once
    await store.record_assignment(closed.id, liu.id, "service_specialist", t4)  # closed: not open, but latest
    await store.record_assignment(open_two.id, zhang.id, "developer", t3)
    await store.record_assignment(open_two.id, zhang.id, "developer", t3)  # recorded again: still one

    loads = await store.assignment_loads([liu.id, zhang.id, idle.id, "u_unknown", liu.id])
    assert loads == {liu.id: (1, t4), zhang.id: (1, t3), idle.id: (0, None), "u_unknown": (0, None)}
    assert await store.assignment_loads([]) == {}

    await store.update_project(open_one.id, stage="closed")
    assert (await store.assignment_loads([liu.id]))[liu.id] == (0, t4)


def an_entry(action: str = "login", *, at: datetime | None = None, **kw: Any) -> AuditEntry:
    return AuditEntry(
        id=new_id("a"),
        at=at or tick(),
        actor_id=kw.pop("actor_id", None),
        action=action,
        outcome=kw.pop("outcome", "success"),
        **kw,
    )


async def test_audit_entries_read_back_newest_first_with_their_detail(store: Store) -> None:
    first = an_entry(
        "message_edited",
        actor_id="u_1",
        room_id="r_1",
        target_id="m_1",
        detail={"old_text": "旧的文字 🙂", "nested": {"list": [1, None, True]}},
    )
    second = an_entry("login", actor_id=None, outcome="failure", detail={"username": "nobody"})
    for entry in (first, second):
        await store.append_audit(entry)
    assert await store.list_audit() == [second, first]
    assert await store.list_audit(limit=1) == [second]


async def test_audit_filters_by_time_actor_and_room(store: Store) -> None:
    t = [tick() for _ in range(4)]
    entries = [
        an_entry("login", at=t[0], actor_id="u_a"),
        an_entry("member_added", at=t[1], actor_id="u_a", room_id="r_1", target_id="u_b"),
        an_entry("message_deleted", at=t[2], actor_id="u_b", room_id="r_1"),
        an_entry("stage_changed", at=t[3], actor_id=None, room_id="r_2"),
    ]
    for entry in reversed(entries):  # stored out of order: the list still goes by time
        await store.append_audit(entry)

    def ids(found: list[AuditEntry]) -> list[str]:
        return [e.id for e in found]

    e = ids(entries)
    assert ids(await store.list_audit()) == e[::-1]
    assert ids(await store.list_audit(since=t[1])) == [e[3], e[2], e[1]]  # since: inclusive
    assert ids(await store.list_audit(until=t[2])) == [e[1], e[0]]  # until: exclusive
    assert ids(await store.list_audit(since=t[1], until=t[3])) == [e[2], e[1]]
    assert ids(await store.list_audit(actor_id="u_a")) == [e[1], e[0]]
    assert ids(await store.list_audit(room_id="r_1")) == [e[2], e[1]]
    assert ids(await store.list_audit(room_id="r_1", actor_id="u_b")) == [e[2]]
    assert ids(await store.list_audit(actor_id="u_nobody")) == []
    assert ids(await store.list_audit(since=t[3] + timedelta(microseconds=1))) == []


async def expert(store: Store, username: str, max_sessions: int = 2) -> User:
    user = await add_user(store, username, roles=["solution_expert"])
    updated = await store.update_user(user.id, skills=["银企直连", "司库"], max_sessions=max_sessions)
    assert updated is not None
    return updated


async def a_session(store: Store, client: User, product: str = "司库", *, at: datetime | None = None) -> ExpertSession:
    room = await add_room(store, client, title=f"{product} 专家咨询")
    return await store.create_expert_session(
        ExpertSession(
            room_id=room.id,
            client_id=client.id,
            product=product,
            status="queued",
            requested_at=at or tick(),
            requested_by=client.id,
        )
    )


async def test_expert_sessions_read_back_and_list_oldest_request_first(store: Store) -> None:
    li = await add_user(store, "xh.li", kind="client")
    sun = await add_user(store, "xh.sun", kind="client")
    early, late = tick(), tick()
    second = await a_session(store, li, "司库", at=late)
    first = await a_session(store, sun, "司库", at=early)  # stored later, asked earlier
    other = await a_session(store, li, "银企直连")

    assert await store.get_expert_session(first.room_id) == first
    assert await store.get_expert_session("r_missing") is None
    assert [s.room_id for s in await store.list_expert_sessions(status="queued", product="司库")] == [
        first.room_id,
        second.room_id,
    ]
    assert [s.room_id for s in await store.list_expert_sessions(client_id=li.id)] == [second.room_id, other.room_id]
    assert await store.list_expert_sessions(status="active") == []
    assert len(await store.list_expert_sessions()) == 3


async def test_assignment_goes_to_the_least_busy_candidate_with_room_ties_to_the_longest_waiting(store: Store) -> None:
    chen = await expert(store, "se.chen", max_sessions=2)
    lin = await expert(store, "se.lin", max_sessions=2)
    client = await add_user(store, "xh.li", kind="client")
    sessions = [await a_session(store, client) for _ in range(6)]

    # Both idle and never assigned: either may take the first; the other, now less busy, takes the second.
    first = await store.assign_expert_session(sessions[0].room_id, [chen.id, lin.id], tick())
    second = await store.assign_expert_session(sessions[1].room_id, [chen.id, lin.id], tick())
    assert {first, second} == {chen.id, lin.id}
    # One each: the tie goes to the one assigned longest ago — `first`.
    assert await store.assign_expert_session(sessions[2].room_id, [chen.id, lin.id], tick()) == first
    # `first` has two, at their limit: `second` it is, then nobody.
    assert await store.assign_expert_session(sessions[3].room_id, [chen.id, lin.id], tick()) == second
    assert await store.assign_expert_session(sessions[4].room_id, [chen.id, lin.id], tick()) is None

    assigned = await store.get_expert_session(sessions[0].room_id)
    assert assigned is not None and (assigned.status, assigned.expert_id) == ("active", first)
    assert assigned.assigned_at is not None
    still = await store.get_expert_session(sessions[4].room_id)
    assert still is not None and (still.status, still.expert_id) == ("queued", None)
    # A session that is not queued is never assigned again.
    assert await store.assign_expert_session(sessions[0].room_id, [chen.id, lin.id], tick()) is None
    assert await store.assign_expert_session("r_missing", [chen.id], tick()) is None
    assert await store.assign_expert_session(sessions[5].room_id, [], tick()) is None


async def test_a_never_assigned_expert_wins_a_tie_and_an_inactive_one_is_skipped(store: Store) -> None:
    veteran = await expert(store, "se.veteran")
    rookie = await expert(store, "se.rookie")
    away = await expert(store, "se.away")
    await store.update_user(away.id, active=False)
    client = await add_user(store, "xh.li", kind="client")
    old = await a_session(store, client)
    assert await store.assign_expert_session(old.room_id, [veteran.id], tick()) == veteran.id
    closed = await store.update_expert_session(old.room_id, expected_status="active", status="closed", closed_at=tick())
    assert closed is not None

    fresh = await a_session(store, client)
    assert await store.assign_expert_session(fresh.room_id, [away.id, veteran.id, rookie.id], tick()) == rookie.id
    nobody = await a_session(store, client)
    assert await store.update_user(veteran.id, max_sessions=0) is not None
    assert await store.assign_expert_session(nobody.room_id, [away.id, veteran.id], tick()) is None


async def test_concurrent_assignments_never_exceed_a_limit_nor_serve_a_session_twice(store: Store) -> None:
    experts = [await expert(store, "se.chen", max_sessions=2), await expert(store, "se.lin", max_sessions=2)]
    ids = [e.id for e in experts]
    clients = [await add_user(store, f"client{i}", kind="client") for i in range(10)]
    sessions = [await a_session(store, c) for c in clients]

    # Every session asked for three times at once, against two experts with two slots each.
    results = await asyncio.gather(*(store.assign_expert_session(s.room_id, ids, tick()) for s in sessions * 3))

    assert sum(r is not None for r in results) == 4
    active = await store.list_expert_sessions(status="active")
    assert len(active) == 4
    assert sorted(s.expert_id for s in active) == sorted(ids * 2)  # type: ignore[type-var]
    assert len({s.room_id for s in active}) == 4
    assert len(await store.list_expert_sessions(status="queued")) == 6


async def test_update_expert_session_is_a_compare_and_set_on_the_status(store: Store) -> None:
    chen = await expert(store, "se.chen")
    client = await add_user(store, "xh.li", kind="client")
    session = await a_session(store, client, "银企直连")
    assert await store.update_expert_session(session.room_id, expected_status="active", status="closed") is None
    assert await store.assign_expert_session(session.room_id, [chen.id], tick()) == chen.id

    requeued = await store.update_expert_session(
        session.room_id, expected_status="active", status="queued", product="司库", clear_expert=True
    )
    assert requeued is not None
    assert (requeued.status, requeued.product, requeued.expert_id, requeued.assigned_at) == (
        "queued",
        "司库",
        None,
        None,
    )
    back = await store.update_expert_session(
        session.room_id, expected_status="queued", status="active", expert_id=chen.id
    )
    assert back is not None and (back.status, back.expert_id) == ("active", chen.id) and back.assigned_at is not None
    when = tick()
    closed = await store.update_expert_session(
        session.room_id, expected_status="active", status="closed", closed_at=when
    )
    assert closed is not None and (closed.status, closed.closed_at) == ("closed", when)
    assert await store.update_expert_session(session.room_id, expected_status="active", status="closed") is None
    assert await store.update_expert_session("r_missing", expected_status="queued", status="active") is None
    assert (await store.get_expert_session(session.room_id)) == closed


async def test_a_closed_session_is_rated_once_and_only_by_its_client(store: Store) -> None:
    chen = await expert(store, "se.chen")
    client = await add_user(store, "xh.li", kind="client")
    other = await add_user(store, "rf.zhou", kind="client")
    session = await a_session(store, client)
    assert await store.rate_expert_session(session.room_id, client.id, 5, None) is False  # not closed
    await store.assign_expert_session(session.room_id, [chen.id], tick())
    await store.update_expert_session(session.room_id, expected_status="active", status="closed", closed_at=tick())

    assert await store.rate_expert_session(session.room_id, other.id, 1, "差") is False
    assert await store.rate_expert_session(session.room_id, client.id, 4, "很专业，谢谢") is True
    assert await store.rate_expert_session(session.room_id, client.id, 1, "改主意了") is False
    assert await store.rate_expert_session("r_missing", client.id, 3, None) is False
    rated = await store.get_expert_session(session.room_id)
    assert rated is not None and (rated.rating, rated.comment) == (4, "很专业，谢谢")


async def test_concurrent_ratings_store_one(store: Store) -> None:
    chen = await expert(store, "se.chen")
    client = await add_user(store, "xh.li", kind="client")
    session = await a_session(store, client)
    await store.assign_expert_session(session.room_id, [chen.id], tick())
    await store.update_expert_session(session.room_id, expected_status="active", status="closed", closed_at=tick())
    results = await asyncio.gather(
        *(store.rate_expert_session(session.room_id, client.id, n, None) for n in range(1, 6))
    )
    assert results.count(True) == 1
    rated = await store.get_expert_session(session.room_id)
    assert rated is not None and rated.rating == results.index(True) + 1


async def test_update_room_changes_title_and_read_only(store: Store) -> None:
    room = await add_room(store)
    closed = await store.update_room(room.id, read_only=True)
    assert closed is not None and closed.read_only is True and closed.title == room.title
    renamed = await store.update_room(room.id, title="华岳能源 · 司库")
    assert renamed is not None and (renamed.title, renamed.read_only) == ("华岳能源 · 司库", True)
    reopened = await store.update_room(room.id, read_only=False)
    assert reopened is not None and reopened.read_only is False
    assert await store.update_room(room.id) == reopened
    assert await store.update_room("r_missing", read_only=True) is None
    assert await store.get_room("r_missing") is None


async def test_find_message_looks_up_a_senders_client_msg_id_in_one_room(store: Store) -> None:
    wang = await add_user(store, "am.wang")
    li = await add_user(store, "xh.li", kind="client")
    room = await add_room(store, wang, li)
    other_room = await add_room(store, wang)
    sent = await send(store, room, wang, "方案已发", client_msg_id="c-1")

    assert await store.find_message(room.id, wang.id, "c-1") == sent
    assert await store.find_message(room.id, li.id, "c-1") is None
    assert await store.find_message(other_room.id, wang.id, "c-1") is None
    assert await store.find_message(room.id, wang.id, "c-2") is None
    await store.delete_message(sent.id, tick(), wang.id)
    found = await store.find_message(room.id, wang.id, "c-1")
    assert found is not None and found.deleted and found.seq == sent.seq


async def test_the_new_records_are_still_there_after_closing_and_reopening(backend: Backend) -> None:
    store = await backend.open()
    chen = await expert(store, "se.chen")
    client = await add_user(store, "xh.li", kind="client")
    project = await store.create_project(a_project())
    await store.update_project(project.id, stage="implementation", unstaffed=["developer"])
    when = tick()
    await store.record_assignment(project.id, chen.id, "solution_expert", when)
    await store.claim_delivery("platform", "d-1", "SMP-2026-0031", tick())
    session = await a_session(store, client)
    await store.assign_expert_session(session.room_id, [chen.id], tick())
    entry = an_entry("project_created", target_id=project.id, detail={"external_id": "SMP-2026-0031"})
    await store.append_audit(entry)
    snapshot = (
        await store.get_projects([project.id]),
        await store.get_expert_session(session.room_id),
        await store.get_user(chen.id),
    )
    await store.close()

    reopened = await backend.open()
    try:
        assert (
            await reopened.get_projects([project.id]),
            await reopened.get_expert_session(session.room_id),
            await reopened.get_user(chen.id),
        ) == snapshot
        assert await reopened.assignment_loads([chen.id]) == {chen.id: (1, when)}
        assert await reopened.claim_delivery("platform", "d-1", "other", tick()) == "SMP-2026-0031"
        assert await reopened.list_audit() == [entry]
    finally:
        await reopened.close()


async def test_bot_values_round_trip_per_bot(store: Store) -> None:
    assert await store.get_bot_value("tickets", "k") is None
    assert await store.set_bot_value("tickets", "k", {"n": 1, "名": "工单"}, max_keys=10)
    assert await store.get_bot_value("tickets", "k") == {"n": 1, "名": "工单"}
    assert await store.get_bot_value("advisor", "k") is None  # each bot has its own keys
    assert await store.set_bot_value("tickets", "k", [1, 2], max_keys=10)
    assert await store.get_bot_value("tickets", "k") == [1, 2]
    await store.delete_bot_value("tickets", "k")
    assert await store.get_bot_value("tickets", "k") is None


async def test_only_if_absent_keeps_the_first_value(store: Store) -> None:
    results = await asyncio.gather(
        *(store.set_bot_value("tickets", "msg-1", i, max_keys=10, only_if_absent=True) for i in range(5))
    )
    assert sorted(results) == [False, False, False, False, True]
    assert await store.get_bot_value("tickets", "msg-1") == results.index(True)


async def test_a_bot_keeps_at_most_max_keys(store: Store) -> None:
    for i in range(3):
        await store.set_bot_value("advisor", f"k{i}", i, max_keys=3)
    with pytest.raises(BotStateFull):
        await store.set_bot_value("advisor", "k3", 3, max_keys=3)
    assert await store.set_bot_value("advisor", "k0", "changed", max_keys=3)  # replacing is not a new key
    assert await store.set_bot_value("tickets", "k0", 0, max_keys=3)  # another bot's count is its own
    assert await store.get_bot_value("advisor", "k3") is None


# mentions ----------------------------------------------------------------------------------------


async def test_mentions_are_stored_with_a_message_replaced_by_an_edit_and_cleared_by_a_delete(store: Store) -> None:
    wang = await add_user(store, "am.wang")
    li = await add_user(store, "xh.li", kind="client")
    chen = await add_user(store, "se.chen")
    room = await add_room(store, wang, li, chen)
    message, _ = await store.append_message(
        message_id=new_id("m"),
        room_id=room.id,
        sender_id=wang.id,
        text="@用户xh.li 请看",
        client_msg_id="c-1",
        created_at=tick(),
        mentions=[li.id, li.id],
    )
    plain = await send(store, room, wang, "没有提到谁")

    assert message.mentions == [li.id]
    assert (await store.get_message(message.id)).mentions == [li.id]  # type: ignore[union-attr]
    assert (await store.get_message(plain.id)).mentions == []  # type: ignore[union-attr]
    assert (await store.find_message(room.id, wang.id, "c-1")).mentions == [li.id]  # type: ignore[union-attr]

    kept = await store.edit_message(message.id, "@用户xh.li 请看（改）", tick(), wang.id)
    assert kept is not None and kept.mentions == [li.id]  # no mentions given: unchanged
    edited = await store.edit_message(message.id, "@用户se.chen 请看", tick(), wang.id, mentions=[chen.id])
    assert edited is not None and edited.mentions == [chen.id]
    page, _ = await store.list_messages(room.id)
    assert [m.mentions for m in page] == [[chen.id], []]

    deleted = await store.delete_message(message.id, tick(), wang.id)
    assert deleted is not None and deleted.mentions == []


# mention emails ----------------------------------------------------------------------------------


async def test_a_mention_email_is_queued_once_per_person_and_message_ever(store: Store) -> None:
    wang = await add_user(store, "am.wang")
    li = await add_user(store, "xh.li", kind="client")
    sun = await add_user(store, "xh.sun", kind="client")
    room = await add_room(store, wang, li, sun)
    first = await send(store, room, wang, "@李娜 一")
    second = await send(store, room, wang, "@李娜 二")

    assert await store.queue_mention_emails(first.id, room.id, [li.id, sun.id, li.id], tick()) == [li.id, sun.id]
    assert await store.queue_mention_emails(first.id, room.id, [li.id], tick()) == []  # pending already
    assert await store.queue_mention_emails(second.id, room.id, [li.id], tick()) == [li.id]

    pending = await store.list_mention_emails(state="pending", user_id=li.id)
    assert [(p.message_id, p.room_id, p.state) for p in pending] == [
        (first.id, room.id, "pending"),
        (second.id, room.id, "pending"),
    ]
    assert [p.user_id for p in await store.list_mention_emails(state="pending")] == [li.id, sun.id, li.id]

    when = tick()
    sent = await store.finish_mention_emails(li.id, [first.id, second.id], state="sent", expected="pending", at=when)
    assert sent == [first.id, second.id]
    assert await store.finish_mention_emails(li.id, [first.id], state="sent", expected="pending", at=tick()) == []
    [done, _] = await store.list_mention_emails(state="sent", user_id=li.id)
    assert (done.state, done.done_at) == ("sent", when)
    # sent (or skipped) is for good: the same message is never queued for the same person again
    assert await store.queue_mention_emails(first.id, room.id, [li.id], tick()) == []
    assert await store.list_mention_emails(state="pending", user_id=li.id) == []


async def test_a_claimed_mention_email_can_be_released_back_to_pending(store: Store) -> None:
    wang = await add_user(store, "am.wang")
    li = await add_user(store, "xh.li", kind="client")
    room = await add_room(store, wang, li)
    message = await send(store, room, wang, "@李娜")
    await store.queue_mention_emails(message.id, room.id, [li.id], tick())

    await store.finish_mention_emails(li.id, [message.id], state="sent", expected="pending", at=tick())
    released = await store.finish_mention_emails(li.id, [message.id], state="pending", expected="sent", at=tick())

    assert released == [message.id]
    [again] = await store.list_mention_emails(state="pending", user_id=li.id)
    assert again.done_at is None
    skipped = await store.finish_mention_emails(li.id, [message.id], state="skipped", expected="pending", at=tick())
    assert skipped == [message.id]
    assert await store.list_mention_emails(state="pending") == []


async def test_mention_emails_survive_reopening_the_store(backend: Backend) -> None:
    store = await backend.open()
    wang = await add_user(store, "am.wang")
    li = await add_user(store, "xh.li", kind="client")
    room = await add_room(store, wang, li)
    message = await send(store, room, wang, "@李娜")
    await store.queue_mention_emails(message.id, room.id, [li.id], tick())
    await store.close()

    reopened = await backend.open()
    try:
        assert [p.message_id for p in await reopened.list_mention_emails(state="pending")] == [message.id]
    finally:
        await reopened.close()


# invitations -------------------------------------------------------------------------------------


def invitation(user: User, token_hash: str, *, hours: float = 72) -> Invitation:
    created = tick()
    return Invitation(
        token_hash=token_hash, user_id=user.id, created_at=created, expires_at=created + timedelta(hours=hours)
    )


async def test_an_invitation_is_accepted_once_setting_the_password_and_voiding_older_tokens(store: Store) -> None:
    qiao = await add_user(store, "hy.qiao", kind="client")
    stored = await store.create_invitation(invitation(qiao, "hash-1"))
    assert await store.get_invitation("hash-1") == stored
    assert await store.get_invitation("hash-missing") is None
    assert await store.get_password_hash(qiao.id) is None

    when = tick()
    accepted = await store.accept_invitation("hash-1", "argon2-hash", when)

    assert accepted is not None and accepted.used_at == when
    assert await store.get_password_hash(qiao.id) == "argon2-hash"
    assert (await store.get_user(qiao.id)).tokens_after == when  # type: ignore[union-attr]
    assert await store.accept_invitation("hash-1", "another-hash", tick()) is None
    assert await store.get_password_hash(qiao.id) == "argon2-hash"


async def test_an_expired_revoked_or_unknown_invitation_changes_nothing(store: Store) -> None:
    qiao = await add_user(store, "hy.qiao", kind="client")
    old = await store.create_invitation(invitation(qiao, "hash-old"))
    new = await store.create_invitation(invitation(qiao, "hash-new", hours=1))

    revoked = await store.get_invitation("hash-old")
    assert revoked is not None and revoked.revoked_at == new.created_at and old.revoked_at is None
    assert await store.accept_invitation("hash-old", "h", tick()) is None  # replaced by the newer one
    assert await store.accept_invitation("hash-new", "h", new.expires_at) is None  # expired at that moment
    assert await store.accept_invitation("hash-missing", "h", tick()) is None
    assert await store.get_password_hash(qiao.id) is None
    assert (await store.get_invitation("hash-new")).used_at is None  # type: ignore[union-attr]
    assert (await store.get_user(qiao.id)).tokens_after is None  # type: ignore[union-attr]


async def test_a_disabled_user_cannot_accept_an_invitation(store: Store) -> None:
    qiao = await add_user(store, "hy.qiao", kind="client")
    await store.create_invitation(invitation(qiao, "hash-1"))
    await store.update_user(qiao.id, active=False)

    assert await store.accept_invitation("hash-1", "h", tick()) is None
    assert await store.get_password_hash(qiao.id) is None


# tickets -----------------------------------------------------------------------------------------


def a_ticket(room: Room, reporter: User, source: Message, *, internal: bool = False) -> Ticket:
    at = tick()
    return Ticket(
        id=new_id("t"),
        number=0,
        title="证书无法下载",
        description=source.text,
        room_id=room.id,
        reporter_id=reporter.id,
        source_message_id=source.id,
        command_message_id=source.id,
        created_at=at,
        updated_at=at,
        internal=internal,
    )


async def test_tickets_are_numbered_in_order_and_once_per_source_message(store: Store) -> None:
    li = await add_user(store, "xh.li", kind="client")
    room = await add_room(store, li)
    other_room = await add_room(store, li, title="瑞丰物流 · 司库系统")
    first_message, second_message = await send(store, room, li), await send(store, other_room, li)

    first, created = await store.create_ticket(a_ticket(room, li, first_message))
    assert created and first.number == 1
    again, created = await store.create_ticket(a_ticket(room, li, first_message))  # a new id, the same message
    assert not created and again == first
    second, created = await store.create_ticket(a_ticket(other_room, li, second_message))
    assert created and second.number == 2  # numbered per server, not per room
    assert await store.get_ticket(1) == first and await store.get_ticket(3) is None
    assert [t.number for t in await store.list_tickets(room.id, include_internal=True)] == [1]


async def test_concurrent_filings_get_distinct_numbers_and_one_ticket_per_message(store: Store) -> None:
    li = await add_user(store, "xh.li", kind="client")
    room = await add_room(store, li)
    messages = [await send(store, room, li, f"问题 {i}") for i in range(5)]
    results = await asyncio.gather(*(store.create_ticket(a_ticket(room, li, m)) for m in messages * 2))
    assert sum(created for _, created in results) == 5
    assert sorted(t.number for t in await store.list_tickets(room.id, include_internal=True)) == [1, 2, 3, 4, 5]


async def test_internal_tickets_are_left_out_for_clients(store: Store) -> None:
    wang = await add_user(store, "am.wang")
    room = await add_room(store, wang)
    public, note = await send(store, room, wang), await send(store, room, wang, internal=True)
    await store.create_ticket(a_ticket(room, wang, public))
    await store.create_ticket(a_ticket(room, wang, note, internal=True))
    assert [t.internal for t in await store.list_tickets(room.id, include_internal=True)] == [False, True]
    assert [t.internal for t in await store.list_tickets(room.id, include_internal=False)] == [False]


async def test_status_changes_are_compare_and_set_and_kept_in_order(store: Store) -> None:
    wang = await add_user(store, "am.wang")
    room = await add_room(store, wang)
    ticket, _ = await store.create_ticket(a_ticket(room, wang, await send(store, room, wang)))
    at = tick()
    changed = await store.change_ticket_status(
        ticket.id, expected_status="open", status="in_progress", actor_id=wang.id, source="web", at=at
    )
    assert changed is not None
    updated, change = changed
    assert updated.status == "in_progress" and updated.change_seq == 1 and updated.updated_at == at
    assert (change.seq, change.status_from, change.status_to, change.actor_id) == (1, "open", "in_progress", wang.id)
    # Two racing moves from the same status: exactly one wins.
    racing = await asyncio.gather(
        *(
            store.change_ticket_status(
                ticket.id, expected_status="in_progress", status=s, actor_id=None, source="webhook", at=tick()
            )
            for s in ("resolved", "closed")
        )
    )
    assert sum(r is not None for r in racing) == 1
    history = await store.list_ticket_changes(ticket.id)
    assert [c.seq for c in history] == [1, 2] and history[0] == change and history[1].source == "webhook"
    assert (
        await store.change_ticket_status(
            "t_missing", expected_status="open", status="closed", actor_id=None, source="web", at=tick()
        )
        is None
    )


async def test_external_keys_and_discarding_unsynced_tickets(store: Store) -> None:
    wang = await add_user(store, "am.wang")
    room = await add_room(store, wang)
    first, _ = await store.create_ticket(a_ticket(room, wang, await send(store, room, wang)))
    second, _ = await store.create_ticket(a_ticket(room, wang, await send(store, room, wang)))
    keyed = await store.set_ticket_external_key(first.id, "OPS-1")
    assert keyed is not None and keyed.external_key == "OPS-1"
    assert await store.get_ticket_by_external_key("OPS-1") == keyed
    with pytest.raises(DuplicateKey):
        await store.set_ticket_external_key(second.id, "OPS-1")
    assert not await store.discard_ticket(first.id)  # the outside system has it: it stays
    assert await store.discard_ticket(second.id)
    assert await store.get_ticket(second.number) is None
    # The number is free again: filings that failed leave no gap behind the last ticket.
    third, _ = await store.create_ticket(a_ticket(room, wang, await send(store, room, wang)))
    assert third.number == 2


async def test_tickets_survive_closing_and_reopening(backend: Backend) -> None:
    store = await backend.open()
    wang = await add_user(store, "am.wang")
    room = await add_room(store, wang)
    ticket, _ = await store.create_ticket(a_ticket(room, wang, await send(store, room, wang)))
    await store.change_ticket_status(
        ticket.id, expected_status="open", status="resolved", actor_id=wang.id, source="web", at=tick()
    )
    snapshot = (await store.get_ticket(1), await store.list_ticket_changes(ticket.id))
    await store.close()
    reopened = await backend.open()
    try:
        assert (await reopened.get_ticket(1), await reopened.list_ticket_changes(ticket.id)) == snapshot
    finally:
        await reopened.close()


async def test_a_read_only_room_refuses_a_message_in_the_writing_transaction(store: Store) -> None:
    wang = await add_user(store, "am.wang")
    room = await add_room(store, wang)
    await send(store, room, wang, "结项前最后一条")
    await store.update_room(room.id, read_only=True)
    with pytest.raises(RoomClosed):
        await send(store, room, wang, "结项后")
    _, created = await store.append_message(
        message_id=new_id("m"),
        room_id=room.id,
        sender_id=wang.id,
        text="项目阶段变更：售后 → 结项。",
        client_msg_id="sys-1",
        created_at=tick(),
        into_read_only=True,
    )
    page, _ = await store.list_messages(room.id)
    assert created and [m.text for m in page] == ["结项前最后一条", "项目阶段变更：售后 → 结项。"]
    assert [m.seq for m in page] == [1, 2]  # the refused one took no seq
