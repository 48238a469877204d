"""Domain events: what happened, published by actions after the store has it, read by subscribers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .models import ExpertSession, Message, Ticket, TicketChange, User, iso


@dataclass(frozen=True, slots=True)
class MessageSent:
    message: Message
    sender: User


@dataclass(frozen=True, slots=True)
class NoticeSent:
    """A private notice to one member of a room (a bot's answer to the caller); never stored."""

    room_id: str
    user_id: str
    sender: User
    text: str
    created_at: datetime

    def to_wire(self) -> dict[str, Any]:
        return {
            "room_id": self.room_id,
            "sender": self.sender.public(),
            "text": self.text,
            "created_at": iso(self.created_at),
        }


@dataclass(frozen=True, slots=True)
class MessageEdited:
    message: Message
    sender: User
    editor_id: str
    mentions_before: tuple[str, ...] = ()  # whom the text mentioned before the edit


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
class RoomUpdated:
    """A room's shared view changed: its project's stage, its read-only state, its title."""

    room_id: str


@dataclass(frozen=True, slots=True)
class ExpertSessionChanged:
    """An expert session was requested, assigned, transferred or closed."""

    session: ExpertSession


@dataclass(frozen=True, slots=True)
class ExpertQueueChanged:
    """The queue for a product changed; `room_ids` are its waiting sessions, first in line first."""

    product: str
    room_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TicketChanged:
    """A ticket was filed (`change` None) or its status changed (`change`: the stored change, with its seq)."""

    ticket: Ticket
    change: TicketChange | None = None


@dataclass(frozen=True, slots=True)
class UserUpdated:
    user: User


@dataclass(frozen=True, slots=True)
class SessionsRevoked:
    """The user's tokens were voided (disabled, or the password changed): their open sockets must close now."""

    user_id: str


@dataclass(frozen=True, slots=True)
class InvitationCreated:
    """A person was invited to set their password. `token` is the one-time secret for the email's link: it is kept
    nowhere else (the store has its hash) and must never be logged."""

    user_id: str
    token: str = field(repr=False)
    expires_at: datetime
    project_title: str | None = None


Event = (
    MessageSent
    | NoticeSent
    | MessageEdited
    | MessageDeleted
    | ReadMarked
    | TypingChanged
    | PresenceChanged
    | MemberAdded
    | MemberRemoved
    | RoomCreated
    | RoomUpdated
    | ExpertSessionChanged
    | ExpertQueueChanged
    | TicketChanged
    | UserUpdated
    | SessionsRevoked
    | InvitationCreated
)
