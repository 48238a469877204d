"""Sending, reading, editing and deleting messages; read markers."""

from __future__ import annotations

from typing import Any

from ..errors import ChatError, Forbidden, NotFound, RoomReadOnly
from ..events import MessageDeleted, MessageEdited, MessageSent, NoticeSent, ReadMarked
from ..mentions import find_mentions
from ..models import Message, User, new_id, utcnow
from ..services import Services
from ..storage import RoomClosed
from ..wire import messages_wire
from . import audit
from ._checks import MESSAGE_NOT_FOUND, can_see, check_text, require_member, require_writable


async def send_message(
    services: Services,
    sender: User,
    *,
    room_id: str,
    text: str,
    client_msg_id: str,
    reply_to: str | None = None,
    internal: bool = False,
) -> tuple[Message, bool]:
    """Store a message with the room's next seq and publish it. Returns (message, created).

    A repeat of the same `client_msg_id` by the same sender in the same room returns the stored
    message and publishes nothing."""
    room, _ = await require_member(services, sender, room_id)
    try:
        text = check_text(services, text)
        if internal and not (sender.is_staff or sender.kind == "bot"):  # bots answer in an internal note's thread
            raise Forbidden("only bank staff can write internal notes")
        require_writable(room)
        if reply_to is not None:
            original = await services.store.get_message(reply_to)
            if original is None or original.room_id != room_id or not can_see(sender, original):
                raise NotFound("the message replied to is not in this room")
            if original.internal and not internal:
                reply_to = None  # a public reply keeps no link to an internal note: clients must not learn of it
    except ChatError:
        # A retry gets the answer it should have had, whatever has changed since (the room closed, the limits).
        # Only a refused send looks for it here: on the way in, append_message finds a stored one itself, in
        # its write transaction, and returns it with created=False.
        stored = await services.store.find_message(room_id, sender.id, client_msg_id)
        if stored is not None:
            return stored, False
        raise
    mentions = await _mentions(services, room_id, sender, text, internal=internal)
    try:
        message, created = await services.store.append_message(
            message_id=new_id("m"),
            room_id=room_id,
            sender_id=sender.id,
            text=text,
            client_msg_id=client_msg_id,
            created_at=utcnow(),
            reply_to=reply_to,
            internal=internal,
            mentions=mentions,
        )
    except RoomClosed:  # closed between the check above and the write
        raise RoomReadOnly("the room is read-only") from None
    if created:
        services.metrics.messages_sent.inc()
        await services.bus.publish(MessageSent(message=message, sender=sender))
    return message, created


async def _mentions(services: Services, room_id: str, sender: User, text: str, *, internal: bool) -> list[str]:
    """The members `text` mentions by real name (mentions.py), the sender aside. Nobody can be mentioned into an
    internal note who may not read it: a client named in one is not mentioned."""
    if "@" not in text and "＠" not in text:
        return []
    members = await services.store.list_members(room_id)
    users = await services.store.get_users([m.user_id for m in members if m.user_id != sender.id])
    candidates = [
        (m.user_id, users[m.user_id].name)
        for m in members
        if m.user_id in users and not (internal and users[m.user_id].kind == "client")
    ]
    return find_mentions(text, candidates)


async def send_notice(services: Services, sender: User, *, room_id: str, user_id: str, text: str) -> dict[str, Any]:
    """A bot's private notice to one member of a room (an answer to that member's command): only that user's
    sockets get it, as a `notice` event, and it is not stored. Returns the notice as sent. The bot need not be a
    member (the help bot answers everywhere without crowding member lists); the recipient must be."""
    if sender.kind != "bot":
        raise Forbidden("only bots send notices")
    text = check_text(services, text)
    recipient = await services.store.get_user(user_id)
    if recipient is None or not recipient.active or await services.store.get_membership(room_id, user_id) is None:
        raise NotFound("the recipient is not in this room")
    notice = NoticeSent(room_id=room_id, user_id=user_id, sender=sender, text=text, created_at=utcnow())
    await services.bus.publish(notice)
    return notice.to_wire()


async def get_history(
    services: Services,
    user: User,
    *,
    room_id: str,
    before_seq: int | None = None,
    after_seq: int | None = None,
    limit: int = 50,
) -> tuple[list[dict[str, Any]], bool]:
    await require_member(services, user, room_id)
    messages, has_more = await services.store.list_messages(
        room_id,
        before_seq=before_seq,
        after_seq=after_seq,
        limit=limit,
        include_internal=user.is_staff,
    )
    return await messages_wire(services.store, messages), has_more


async def mark_read(services: Services, user: User, *, room_id: str, seq: int) -> int:
    await require_member(services, user, room_id)
    before = await services.store.get_membership(room_id, user.id)
    marker = await services.store.set_last_read(room_id, user.id, seq)
    if marker is None:
        raise NotFound("room not found")
    if before is None or marker != before.last_read_seq:
        await services.bus.publish(ReadMarked(room_id=room_id, user_id=user.id, seq=marker))
    return marker


async def _changeable_message(services: Services, user: User, message_id: str) -> tuple[Message, User]:
    """The message, if the user may change it: the sender, or an admin who is in the room."""
    message = await services.store.get_message(message_id)
    if message is None or not can_see(user, message):
        raise NotFound(MESSAGE_NOT_FOUND)
    try:
        room, _ = await require_member(services, user, message.room_id)
    except NotFound:
        raise NotFound(MESSAGE_NOT_FOUND) from None  # the same answer as for no such message
    if message.sender_id != user.id and not user.is_admin:
        raise Forbidden("you can only change your own messages")
    require_writable(room)
    sender = user if message.sender_id == user.id else await services.store.get_user(message.sender_id)
    if sender is None:
        raise NotFound(MESSAGE_NOT_FOUND)
    return message, sender


async def edit_message(services: Services, user: User, *, message_id: str, text: str) -> tuple[Message, User]:
    text = check_text(services, text)
    message, sender = await _changeable_message(services, user, message_id)
    if message.deleted:
        raise NotFound("the message was deleted")
    if text == message.text:
        return message, sender
    mentions = await _mentions(services, message.room_id, sender, text, internal=message.internal)
    edited = await services.store.edit_message(message.id, text, utcnow(), user.id, mentions=mentions)
    if edited is None:
        raise NotFound(MESSAGE_NOT_FOUND)
    await audit.record(
        services,
        "message_edited",
        actor_id=user.id,
        room_id=message.room_id,
        target_id=message.id,
        old_text=message.text,
    )
    await services.bus.publish(
        MessageEdited(message=edited, sender=sender, editor_id=user.id, mentions_before=tuple(message.mentions))
    )
    return edited, sender


async def delete_message(services: Services, user: User, *, message_id: str) -> tuple[Message, User]:
    message, sender = await _changeable_message(services, user, message_id)
    if message.deleted:
        return message, sender
    deleted = await services.store.delete_message(message.id, utcnow(), user.id)
    if deleted is None:
        raise NotFound(MESSAGE_NOT_FOUND)
    await audit.record(
        services,
        "message_deleted",
        actor_id=user.id,
        room_id=message.room_id,
        target_id=message.id,
        old_text=message.text,
    )
    await services.bus.publish(MessageDeleted(message=deleted, sender=sender, deleter_id=user.id))
    return deleted, sender
