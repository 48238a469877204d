"""Domain events: what happened, published by actions after the store has it, read by subscribers."""

from __future__ import annotations

from dataclasses import dataclass

from .models import Message, User


@dataclass(frozen=True, slots=True)
class MessageSent:
    message: Message
    sender: User


@dataclass(frozen=True, slots=True)
class MessageEdited:
    message: Message
    sender: User
    editor_id: str


@dataclass(frozen=True, slots=True)
class MessageDeleted:
    message: Message
    sender: User
    deleter_id: str


@dataclass(frozen=True, slots=True)
class ReadMarked:
    room_id: str
    user_id: str
    seq: int


@dataclass(frozen=True, slots=True)
class TypingChanged:
    room_id: str
    user: User
    typing: bool


@dataclass(frozen=True, slots=True)
class PresenceChanged:
    user_id: str
    online: bool
    room_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MemberAdded:
    room_id: str
    user_id: str
    role: str


@dataclass(frozen=True, slots=True)
class MemberRemoved:
    room_id: str
    user_id: str


@dataclass(frozen=True, slots=True)
class RoomCreated:
    room_id: str


@dataclass(frozen=True, slots=True)
class UserUpdated:
    user: User


@dataclass(frozen=True, slots=True)
class UserDisabled:
    user_id: str


Event = (
    MessageSent
    | MessageEdited
    | MessageDeleted
    | ReadMarked
    | TypingChanged
    | PresenceChanged
    | MemberAdded
    | MemberRemoved
    | RoomCreated
    | UserUpdated
    | UserDisabled
)
