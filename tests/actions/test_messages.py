"""Sending, reading, editing and deleting messages, and read markers, through the real services."""

from __future__ import annotations

import itertools

import pytest

from chatserver.actions import messages, presence, rooms
from chatserver.errors import EmptyText, Forbidden, NotFound, RoomReadOnly, TextTooLong
from chatserver.events import (
    Event,
    MemberAdded,
    MemberRemoved,
    MessageDeleted,
    MessageEdited,
    MessageSent,
    ReadMarked,
    TypingChanged,
)
from chatserver.models import Message, User
from chatserver.services import Services

from .conftest import Refuse, ServicesFactory, World, add_room, add_user

_ids = itertools.count()


def cid() -> str:
    return f"c-{next(_ids)}"


async def send(
    services: Services, sender: User, room_id: str, text: str = "证书已经上传，请查收。", **kw: object
) -> Message:
    message, created = await messages.send_message(
        services,
        sender,
        room_id=room_id,
        text=text,
        client_msg_id=cid(),
        **kw,  # type: ignore[arg-type]
    )
    assert created
    return message


# send_message ------------------------------------------------------------------------------------


async def test_a_member_sends_a_message_that_is_stored_and_published_once(
    services: Services, world: World, events: list[Event]
) -> None:
    message, created = await messages.send_message(
        services, world.li, room_id=world.xinghe.id, text="测试环境的证书什么时候能发？", client_msg_id="c-7d1"
    )

    assert created is True
    assert (message.room_id, message.seq, message.sender_id, message.text, message.client_msg_id) == (
        world.xinghe.id,
        1,
        world.li.id,
        "测试环境的证书什么时候能发？",
        "c-7d1",
    )
    assert (message.internal, message.deleted, message.edited_at, message.reply_to) == (False, False, None, None)
    assert events == [MessageSent(message=message, sender=world.li)]
    assert await services.store.get_message(message.id) == message

    second = await send(services, world.wang, world.xinghe.id, "下午发")
    assert second.seq == 2
    assert events[1:] == [MessageSent(message=second, sender=world.wang)]


async def test_a_retry_with_the_same_client_msg_id_returns_the_stored_message_and_publishes_nothing(
    services: Services, world: World, events: list[Event]
) -> None:
    first, _ = await messages.send_message(
        services, world.li, room_id=world.xinghe.id, text="请确认联调时间", client_msg_id="retry-1"
    )
    again, created = await messages.send_message(
        services, world.li, room_id=world.xinghe.id, text="请确认联调时间", client_msg_id="retry-1"
    )

    assert created is False
    assert again == first
    assert events == [MessageSent(message=first, sender=world.li)]
    history, _ = await messages.get_history(services, world.li, room_id=world.xinghe.id)
    assert [m["id"] for m in history] == [first.id]


async def test_a_retry_after_the_room_closed_still_gets_the_stored_message_and_a_new_send_is_refused(
    services: Services, world: World, refuse: Refuse
) -> None:
    first, _ = await messages.send_message(
        services, world.li, room_id=world.xinghe.id, text="请确认联调时间", client_msg_id="retry-2"
    )
    await rooms.set_read_only(services, world.xinghe.id, True)

    again, created = await messages.send_message(
        services, world.li, room_id=world.xinghe.id, text="请确认联调时间", client_msg_id="retry-2"
    )
    assert (again, created) == (first, False)
    await refuse(
        messages.send_message(services, world.li, room_id=world.xinghe.id, text="再问一下", client_msg_id=cid()),
        RoomReadOnly,
    )


async def test_a_non_member_gets_the_same_not_found_as_for_a_missing_room(
    services: Services, world: World, refuse: Refuse
) -> None:
    not_member = await refuse(
        messages.send_message(services, world.zhou, room_id=world.xinghe.id, text="你好", client_msg_id=cid()),
        NotFound,
    )
    missing = await refuse(
        messages.send_message(services, world.zhou, room_id="r_0000000000000000", text="你好", client_msg_id=cid()),
        NotFound,
    )

    assert str(not_member) == str(missing) == "room not found"
    # even an admin must be a member
    await refuse(
        messages.send_message(services, world.boss, room_id=world.xinghe.id, text="你好", client_msg_id=cid()),
        NotFound,
    )


@pytest.mark.parametrize("text", ["", " ", "   \n\t ", "\u3000\u3000"], ids=["empty", "space", "blank", "ideographic"])
async def test_empty_or_blank_text_is_refused(services: Services, world: World, refuse: Refuse, text: str) -> None:
    await refuse(
        messages.send_message(services, world.li, room_id=world.xinghe.id, text=text, client_msg_id=cid()), EmptyText
    )


async def test_text_over_the_character_or_byte_limit_is_refused(make_services: ServicesFactory) -> None:
    services = await make_services(max_text_chars=100, max_text_bytes=200)
    sender = await add_user(services, "xh.li", "李娜", "星河", "client", "client_admin")
    room = await add_room(services, "星河", [sender])
    published: list[Event] = []

    async def record(event: Event) -> None:
        published.append(event)

    services.bus.subscribe(record)

    async def try_send(text: str) -> Message:
        message, _ = await messages.send_message(services, sender, room_id=room.id, text=text, client_msg_id=cid())
        return message

    assert (await try_send("a" * 100)).text == "a" * 100  # exactly at the character limit
    assert (await try_send("中" * 66 + "ab")).text == "中" * 66 + "ab"  # 200 bytes: exactly at the byte limit
    with pytest.raises(TextTooLong, match="100 characters"):
        await try_send("a" * 101)
    with pytest.raises(TextTooLong, match="200 bytes"):
        await try_send("中" * 67)  # 67 characters, 201 bytes
    with pytest.raises(TextTooLong, match="200 bytes"):
        await try_send("😀" * 51)  # 51 characters, 204 bytes

    assert len(published) == 2
    history, _ = await messages.get_history(services, sender, room_id=room.id)
    assert [m["seq"] for m in history] == [1, 2]


async def test_a_client_cannot_write_an_internal_note_but_staff_can(
    services: Services, world: World, events: list[Event], refuse: Refuse
) -> None:
    for client in (world.li, world.sun):
        await refuse(
            messages.send_message(
                services, client, room_id=world.xinghe.id, text="内部备注", client_msg_id=cid(), internal=True
            ),
            Forbidden,
        )

    note = await send(services, world.chen, world.xinghe.id, "客户的证书下周才到，内部先准备", internal=True)
    assert note.internal is True
    assert events == [MessageSent(message=note, sender=world.chen)]


async def test_nobody_can_write_to_a_closed_room_but_members_can_still_read_it(
    services: Services, world: World, refuse: Refuse
) -> None:
    for user in (world.li, world.wang):
        await refuse(
            messages.send_message(services, user, room_id=world.archive.id, text="还有问题", client_msg_id=cid()),
            RoomReadOnly,
        )
    await refuse(presence.set_typing(services, world.wang, room_id=world.archive.id, typing=True), RoomReadOnly)

    history, has_more = await messages.get_history(services, world.li, room_id=world.archive.id)
    assert [m["text"] for m in history] == ["项目已上线，谢谢各位"] and has_more is False


async def test_a_reply_must_point_at_a_visible_message_in_the_same_room(
    services: Services, world: World, events: list[Event], refuse: Refuse
) -> None:
    question = await send(services, world.li, world.xinghe.id, "证书什么时候到？")
    elsewhere = await send(services, world.zhou, world.ruifeng.id, "别的房间")
    note = await send(services, world.wang, world.xinghe.id, "内部：下周", internal=True)

    answer = await send(services, world.wang, world.xinghe.id, "明天", reply_to=question.id)
    assert answer.reply_to == question.id
    staff_note = await send(services, world.chen, world.xinghe.id, "收到", reply_to=note.id, internal=True)
    assert staff_note.reply_to == note.id
    public_reply = await send(services, world.chen, world.xinghe.id, "好的", reply_to=note.id)
    assert public_reply.reply_to is None  # a public message keeps no link to a note clients must not know of

    for bad in (elsewhere.id, "m_0000000000000000"):
        await refuse(
            messages.send_message(
                services, world.li, room_id=world.xinghe.id, text="回复", client_msg_id=cid(), reply_to=bad
            ),
            NotFound,
        )
    # a client cannot learn of an internal note by replying to it
    await refuse(
        messages.send_message(
            services, world.li, room_id=world.xinghe.id, text="回复", client_msg_id=cid(), reply_to=note.id
        ),
        NotFound,
    )
    assert len(events) == 6


# get_history -------------------------------------------------------------------------------------


async def test_clients_never_see_internal_notes_in_history_and_staff_do(services: Services, world: World) -> None:
    await send(services, world.li, world.xinghe.id, "1 客户提问")
    await send(services, world.wang, world.xinghe.id, "2 内部：客户证书过期了", internal=True)
    await send(services, world.wang, world.xinghe.id, "3 回复客户")
    await send(services, world.chen, world.xinghe.id, "4 内部：我来处理", internal=True)

    client_view, _ = await messages.get_history(services, world.sun, room_id=world.xinghe.id)
    staff_view, _ = await messages.get_history(services, world.wang, room_id=world.xinghe.id)
    assert [m["seq"] for m in client_view] == [1, 3]
    assert [m["seq"] for m in staff_view] == [1, 2, 3, 4]
    assert [m["internal"] for m in staff_view] == [False, True, False, True]
    assert client_view[0]["sender"] == {
        "id": world.li.id,
        "name": "李娜",
        "org": "星河制造集团有限公司",
        "kind": "client",
    }

    newest, has_more = await messages.get_history(services, world.li, room_id=world.xinghe.id, limit=1)
    assert ([m["seq"] for m in newest], has_more) == ([3], True)
    older, has_more = await messages.get_history(services, world.li, room_id=world.xinghe.id, before_seq=3, limit=1)
    assert ([m["seq"] for m in older], has_more) == ([1], False)
    caught_up, has_more = await messages.get_history(services, world.li, room_id=world.xinghe.id, after_seq=1)
    assert ([m["seq"] for m in caught_up], has_more) == ([3], False)

    client_rooms = {r["id"]: r for r in await rooms.list_rooms(services, world.sun)}
    staff_rooms = {r["id"]: r for r in await rooms.list_rooms(services, world.admin)}
    assert client_rooms[world.xinghe.id]["unread"] == 2  # 1 and 3: the notes do not count
    assert client_rooms[world.xinghe.id]["last_message"]["seq"] == 3
    assert staff_rooms[world.xinghe.id]["unread"] == 4
    assert staff_rooms[world.xinghe.id]["last_message"]["seq"] == 4


async def test_a_non_member_reads_no_history(services: Services, world: World, refuse: Refuse) -> None:
    await send(services, world.li, world.xinghe.id)
    err = await refuse(messages.get_history(services, world.zhou, room_id=world.xinghe.id), NotFound)
    assert str(err) == "room not found"
    await refuse(messages.get_history(services, world.boss, room_id=world.xinghe.id), NotFound)


# edit_message and delete_message -----------------------------------------------------------------


async def test_the_sender_edits_their_message_and_the_old_text_is_kept(
    services: Services, world: World, events: list[Event]
) -> None:
    original = await send(services, world.li, world.xinghe.id, "证书明天到")

    edited, sender = await messages.edit_message(services, world.li, message_id=original.id, text="证书后天到")

    assert sender == world.li
    assert (edited.id, edited.seq, edited.text, edited.deleted) == (original.id, 1, "证书后天到", False)
    assert edited.edited_at is not None and edited.edited_at >= original.created_at
    assert events[1:] == [MessageEdited(message=edited, sender=world.li, editor_id=world.li.id)]
    history, _ = await messages.get_history(services, world.sun, room_id=world.xinghe.id)
    assert [(m["text"], m["edited_at"] is not None) for m in history] == [("证书后天到", True)]
    assert [r.text for r in await services.store.list_revisions(original.id)] == ["证书明天到"]

    unchanged, _ = await messages.edit_message(services, world.li, message_id=original.id, text="证书后天到")
    assert unchanged == edited
    assert len(events) == 2  # the same text again: nothing to publish


async def test_the_sender_deletes_their_message_leaving_a_tombstone(
    services: Services, world: World, events: list[Event]
) -> None:
    doomed = await send(services, world.li, world.xinghe.id, "账号 6222 0000 1234")
    after = await send(services, world.wang, world.xinghe.id, "收到")

    tombstone, sender = await messages.delete_message(services, world.li, message_id=doomed.id)

    assert sender == world.li
    assert (tombstone.id, tombstone.seq, tombstone.text, tombstone.deleted) == (doomed.id, 1, "", True)
    assert events[2:] == [MessageDeleted(message=tombstone, sender=world.li, deleter_id=world.li.id)]
    history, _ = await messages.get_history(services, world.sun, room_id=world.xinghe.id)
    assert [(m["seq"], m["text"], m["deleted"]) for m in history] == [(1, "", True), (2, "收到", False)]
    assert history[1]["id"] == after.id

    again, _ = await messages.delete_message(services, world.li, message_id=doomed.id)
    assert again == tombstone
    assert len(events) == 3  # deleting twice publishes once


async def test_only_the_sender_or_an_admin_in_the_room_may_change_a_message(
    services: Services, world: World, events: list[Event], refuse: Refuse
) -> None:
    message = await send(services, world.li, world.xinghe.id, "原文")

    for other in (world.sun, world.wang, world.chen):
        err = await refuse(messages.edit_message(services, other, message_id=message.id, text="改掉"), Forbidden)
        assert "own messages" in str(err)
        await refuse(messages.delete_message(services, other, message_id=message.id), Forbidden)
    for outsider in (world.zhou, world.boss):  # not in the room, even an admin
        await refuse(messages.edit_message(services, outsider, message_id=message.id, text="改掉"), NotFound)
        await refuse(messages.delete_message(services, outsider, message_id=message.id), NotFound)

    edited, sender = await messages.edit_message(services, world.admin, message_id=message.id, text="管理员修改")
    assert sender == world.li and edited.text == "管理员修改"
    deleted, sender = await messages.delete_message(services, world.admin, message_id=message.id)
    assert sender == world.li and deleted.deleted
    assert events[1:] == [
        MessageEdited(message=edited, sender=world.li, editor_id=world.admin.id),
        MessageDeleted(message=deleted, sender=world.li, deleter_id=world.admin.id),
    ]
    assert [r.replaced_by for r in await services.store.list_revisions(message.id)] == [world.admin.id] * 2


async def test_clients_cannot_touch_internal_notes_and_learn_nothing_of_them(
    services: Services, world: World, refuse: Refuse
) -> None:
    note = await send(services, world.wang, world.xinghe.id, "内部：客户资质有问题", internal=True)

    for client in (world.li, world.sun):
        edit = await refuse(messages.edit_message(services, client, message_id=note.id, text="看到了"), NotFound)
        delete = await refuse(messages.delete_message(services, client, message_id=note.id), NotFound)
        missing = await refuse(messages.delete_message(services, client, message_id="m_0000000000000000"), NotFound)
        assert str(edit) == str(delete) == str(missing)


async def test_a_deleted_message_cannot_be_edited_and_blank_edits_are_refused(
    services: Services, world: World, refuse: Refuse
) -> None:
    message = await send(services, world.li, world.xinghe.id, "原文")
    await refuse(messages.edit_message(services, world.li, message_id=message.id, text="  "), EmptyText)
    await messages.delete_message(services, world.li, message_id=message.id)
    await refuse(messages.edit_message(services, world.li, message_id=message.id, text="复活"), NotFound)


async def test_messages_in_a_closed_room_cannot_be_changed(services: Services, world: World, refuse: Refuse) -> None:
    archived = world.archived_message
    await refuse(messages.edit_message(services, world.li, message_id=archived.id, text="改"), RoomReadOnly)
    await refuse(messages.delete_message(services, world.li, message_id=archived.id), RoomReadOnly)


# mark_read ---------------------------------------------------------------------------------------


async def test_mark_read_moves_forward_only_up_to_the_last_message_and_publishes_changes(
    services: Services, world: World, events: list[Event], refuse: Refuse
) -> None:
    for i in range(4):
        await send(services, world.wang, world.xinghe.id, f"第{i + 1}条")
    events.clear()

    assert await messages.mark_read(services, world.li, room_id=world.xinghe.id, seq=2) == 2
    assert await messages.mark_read(services, world.li, room_id=world.xinghe.id, seq=1) == 2
    assert await messages.mark_read(services, world.li, room_id=world.xinghe.id, seq=2) == 2
    assert await messages.mark_read(services, world.li, room_id=world.xinghe.id, seq=1000) == 4
    assert events == [
        ReadMarked(room_id=world.xinghe.id, user_id=world.li.id, seq=2),
        ReadMarked(room_id=world.xinghe.id, user_id=world.li.id, seq=4),
    ]
    [room] = [r for r in await rooms.list_rooms(services, world.li) if r["id"] == world.xinghe.id]
    assert (room["last_read_seq"], room["unread"]) == (4, 0)

    await refuse(messages.mark_read(services, world.zhou, room_id=world.xinghe.id, seq=1), NotFound)
    await refuse(messages.mark_read(services, world.li, room_id="r_0000000000000000", seq=1), NotFound)


# typing and members ------------------------------------------------------------------------------


async def test_typing_is_published_to_members_only(
    services: Services, world: World, events: list[Event], refuse: Refuse
) -> None:
    await presence.set_typing(services, world.li, room_id=world.xinghe.id, typing=True)
    assert events == [TypingChanged(room_id=world.xinghe.id, user=world.li, typing=True)]
    await refuse(presence.set_typing(services, world.zhou, room_id=world.xinghe.id, typing=True), NotFound)


async def test_adding_and_removing_a_member_is_published_once(
    services: Services, world: World, events: list[Event]
) -> None:
    assert await rooms.add_member(services, room_id=world.ruifeng.id, user_id=world.chen.id, role="solution_expert")
    assert not await rooms.add_member(services, room_id=world.ruifeng.id, user_id=world.chen.id, role="solution_expert")
    assert await rooms.remove_member(services, room_id=world.ruifeng.id, user_id=world.chen.id)
    assert not await rooms.remove_member(services, room_id=world.ruifeng.id, user_id=world.chen.id)

    assert events == [
        MemberAdded(room_id=world.ruifeng.id, user_id=world.chen.id, role="solution_expert"),
        MemberRemoved(room_id=world.ruifeng.id, user_id=world.chen.id),
    ]
    members = await rooms.get_members(services, world.zhou, room_id=world.ruifeng.id)
    assert {m["user"]["id"] for m in members} == {world.wang.id, world.zhou.id}


# mentions ------------------------------------------------------------------------------------------


async def test_a_message_stores_the_members_it_mentions_by_real_name(
    services: Services, world: World, events: list[Event]
) -> None:
    message = await send(services, world.wang, world.xinghe.id, "@李娜 @陈思远 请确认证书；@周敏 不在这个房间")

    assert message.mentions == [world.li.id, world.chen.id]
    assert (await services.store.get_message(message.id)).mentions == message.mentions  # type: ignore[union-attr]
    assert events[-1] == MessageSent(message=message, sender=world.wang)
    assert message.to_wire(world.wang)["mentions"] == [world.li.id, world.chen.id]


async def test_the_sender_does_not_mention_themselves(services: Services, world: World) -> None:
    assert (await send(services, world.wang, world.xinghe.id, "@王晓明 @李娜 提醒自己")).mentions == [world.li.id]


async def test_nobody_is_mentioned_into_an_internal_note_who_cannot_read_it(services: Services, world: World) -> None:
    note = await send(services, world.wang, world.xinghe.id, "@李娜 @陈思远 内部讨论", internal=True)

    assert note.mentions == [world.chen.id]


async def test_an_edit_recomputes_the_mentions_and_a_delete_clears_them(services: Services, world: World) -> None:
    message = await send(services, world.wang, world.xinghe.id, "@李娜 请看")

    edited, _ = await messages.edit_message(services, world.wang, message_id=message.id, text="@孙浩 @李娜 请看")
    assert edited.mentions == [world.sun.id, world.li.id]
    deleted, _ = await messages.delete_message(services, world.wang, message_id=message.id)
    assert deleted.mentions == []
    assert deleted.to_wire(world.wang)["mentions"] == []
