"""Checks shared by actions: membership, visibility, text limits."""

from __future__ import annotations

from ..errors import EmptyText, InvalidPayload, NotFound, RoomReadOnly, TextTooLong
from ..models import Membership, Message, Room, User
from ..services import Services
from ..text import has_visible, unsafe_character

ROOM_NOT_FOUND = "room not found"
MESSAGE_NOT_FOUND = "message not found"


async def require_member(services: Services, user: User, room_id: str) -> tuple[Room, Membership]:
    """The room and the user's membership in it; NotFound alike for missing rooms and non-members.

    From `services.access` when nothing changed memberships or rooms since it was read (`Store.access_version`:
    a removal counts as soon as its write returns), so `room.last_seq` and `membership.last_read_seq` may be
    behind: read counters from the store."""
    store = services.store
    version = store.access_version  # before the reads: a change made while they run is not cached
    cached = services.access.get(version, room_id, user.id)
    if cached is not None:
        return cached
    membership = await store.get_membership(room_id, user.id)
    room = await store.get_room(room_id) if membership else None
    if membership is None or room is None:
        raise NotFound(ROOM_NOT_FOUND)
    services.access.put(version, room_id, user.id, (room, membership))
    return room, membership


def require_writable(room: Room) -> None:
    if room.read_only:
        raise RoomReadOnly("this room is closed and read-only")


def can_see(user: User, message: Message) -> bool:
    """Internal notes: bank staff, and bots (server code; the bot runner decides which bots read them)."""
    return user.is_staff or user.kind == "bot" or not message.internal


def check_text(services: Services, text: str, *, what: str = "text") -> str:
    """The text as it will be stored, or EmptyText / TextTooLong / InvalidPayload.

    Empty means nothing visible: only spaces, zero-width or direction marks, combining marks, fillers."""
    problem = unsafe_character(text, multiline=True)
    if problem:
        raise InvalidPayload(f"{what}: {problem}")
    if not has_visible(text):
        raise EmptyText(f"the {'message' if what == 'text' else what} is empty")
    settings = services.settings
    if len(text) > settings.max_text_chars:
        raise TextTooLong(f"the message is longer than {settings.max_text_chars} characters")
    if len(text.encode("utf-8")) > settings.max_text_bytes:
        raise TextTooLong(f"the message is longer than {settings.max_text_bytes} bytes")
    return text
