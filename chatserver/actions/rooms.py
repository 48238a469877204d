"""Rooms, their members, and the system notices posted in them."""

from __future__ import annotations

from typing import Any

from ..events import MemberAdded, MemberRemoved, MessageSent, RoomCreated, RoomUpdated
from ..models import Membership, Message, Room, RoomKind, User, new_id, utcnow
from ..services import Services
from ..storage import DuplicateKey
from ..wire import summaries_wire
from . import audit
from ._checks import require_member

SYSTEM_USERNAME = "@system"  # not a valid login name, so nobody can take or sign in as it


async def create_room(
    services: Services,
    *,
    kind: RoomKind,
    title: str,
    project_id: str | None = None,
    members: list[tuple[str, str]] = (),  # type: ignore[assignment]
) -> Room:
    """Create a room with its first members, given as (user_id, role in the room)."""
    room = await services.store.create_room(Room(id=new_id("r"), kind=kind, title=title, project_id=project_id))
    await services.bus.publish(RoomCreated(room_id=room.id))
    for user_id, role in members:
        await add_member(services, room_id=room.id, user_id=user_id, role=role)
    return room


async def add_member(services: Services, *, room_id: str, user_id: str, role: str, actor_id: str | None = None) -> bool:
    added = await services.store.add_member(Membership(room_id=room_id, user_id=user_id, role=role))
    if added:
        await audit.record(services, "member_added", actor_id=actor_id, room_id=room_id, target_id=user_id, role=role)
        await services.bus.publish(MemberAdded(room_id=room_id, user_id=user_id, role=role))
    return added


async def remove_member(services: Services, *, room_id: str, user_id: str, actor_id: str | None = None) -> bool:
    removed = await services.store.remove_member(room_id, user_id)
    if removed:
        await audit.record(services, "member_removed", actor_id=actor_id, room_id=room_id, target_id=user_id)
        await services.bus.publish(MemberRemoved(room_id=room_id, user_id=user_id))
    return removed


async def set_read_only(services: Services, room_id: str, read_only: bool) -> None:
    await services.store.update_room(room_id, read_only=read_only)
    await services.bus.publish(RoomUpdated(room_id=room_id))


async def post_system_message(services: Services, room_id: str, text: str, *, internal: bool = False) -> Message:
    """A notice from the system (a stage change, an assignment) in the room, sent as the system user."""
    system = await services.store.get_user(services.system_user_id) if services.system_user_id else None
    if system is None:
        system = await ensure_system_user(services)
    message, _ = await services.store.append_message(
        message_id=new_id("m"),
        room_id=room_id,
        sender_id=system.id,
        text=text,
        client_msg_id=new_id("sys"),
        created_at=utcnow(),
        internal=internal,
        into_read_only=True,  # "项目已结项" goes into the room it closes
    )
    services.metrics.messages_sent.inc()
    await services.bus.publish(MessageSent(message=message, sender=system))
    return message


async def ensure_system_user(services: Services) -> User:
    """The bot that signs system notices; created on first start."""
    user = await ensure_bot_user(services, SYSTEM_USERNAME, "云顾问系统")
    services.system_user_id = user.id
    return user


async def ensure_bot_user(services: Services, username: str, name: str) -> User:
    """A user of kind `bot` (no password: nobody signs in as it), created if missing; its display name follows
    the code. `username` starts with `@`, which login names cannot, so no person can take it."""
    user = await services.store.get_user_by_username(username)
    if user is None:
        user = User(id=new_id("u"), username=username, name=name, org="云顾问", kind="bot")
        try:
            await services.store.create_user(user)
        except DuplicateKey:
            user = await services.store.get_user_by_username(username)
            assert user is not None
    elif user.name != name:
        updated = await services.store.update_user(user.id, name=name)
        if updated is not None:
            user = updated
    return user


async def list_rooms(services: Services, user: User) -> list[dict[str, Any]]:
    summaries = await services.store.room_summaries(user.id, include_internal=user.is_staff)
    return await summaries_wire(services.store, summaries)


async def get_room_view(services: Services, user: User, room_id: str) -> dict[str, Any] | None:
    """One room as `list_rooms` shows it to this user, or None if they are not in it."""
    for room in await list_rooms(services, user):
        if room["id"] == room_id:
            return room
    return None


async def get_members(services: Services, user: User, *, room_id: str) -> list[dict[str, Any]]:
    await require_member(services, user, room_id)
    memberships = await services.store.list_members(room_id)
    users = await services.store.get_users([m.user_id for m in memberships])
    return [
        {
            "user": users[m.user_id].public(),
            "role": m.role,
            "online": services.presence.is_online(m.user_id),
            "last_read_seq": m.last_read_seq,
        }
        for m in memberships
        if m.user_id in users
    ]
