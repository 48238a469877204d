"""Checks shared by actions: membership, visibility, text limits."""

from __future__ import annotations

import unicodedata

from ..errors import EmptyText, InvalidPayload, NotFound, RoomReadOnly, TextTooLong
from ..models import Membership, Message, Room, User
from ..services import Services

ROOM_NOT_FOUND = "room not found"
MESSAGE_NOT_FOUND = "message not found"


async def require_member(services: Services, user: User, room_id: str) -> tuple[Room, Membership]:
    """The room and the user's membership in it; NotFound alike for missing rooms and non-members."""
    membership = await services.store.get_membership(room_id, user.id)
    room = await services.store.get_room(room_id) if membership else None
    if membership is None or room is None:
        raise NotFound(ROOM_NOT_FOUND)
    return room, membership


def require_writable(room: Room) -> None:
    if room.read_only:
        raise RoomReadOnly("this room is closed and read-only")


def can_see(user: User, message: Message) -> bool:
    return user.is_staff or not message.internal


# Characters that show nothing although Unicode does not call them spaces: fillers and blanks.
_BLANKS = frozenset("\u2800\u3164\u115f\u1160\uffa0\u180e")
# Control characters a message may hold: tab and line breaks. Others (NUL, escape, ...) are refused.
_ALLOWED_CONTROLS = frozenset("\t\n\r")


def _visible(ch: str) -> bool:
    return not ch.isspace() and ch not in _BLANKS and unicodedata.category(ch) not in {"Cc", "Cf", "Zs", "Zl", "Zp"}


def check_text(services: Services, text: str) -> str:
    """The text as it will be stored, or EmptyText / TextTooLong / InvalidPayload.

    Empty means nothing visible: only spaces, zero-width or direction marks, fillers."""
    if any(unicodedata.category(ch) == "Cc" and ch not in _ALLOWED_CONTROLS for ch in text):
        raise InvalidPayload("text: control characters are not allowed")
    if not any(_visible(ch) for ch in text):
        raise EmptyText("the message is empty")
    settings = services.settings
    if len(text) > settings.max_text_chars:
        raise TextTooLong(f"the message is longer than {settings.max_text_chars} characters")
    if len(text.encode("utf-8")) > settings.max_text_bytes:
        raise TextTooLong(f"the message is longer than {settings.max_text_bytes} bytes")
    return text
