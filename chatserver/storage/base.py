"""The Store contract: everything the server keeps, behind one interface that every backend implements.

Rules every backend keeps (tests/storage/test_contract.py checks them against each one):
- `append_message` assigns `seq` = the room's previous last seq + 1, atomically, so a room's seqs are
  1, 2, 3, ... with no gaps and no repeats, however many writers race. It is idempotent on
  (room_id, sender_id, client_msg_id): a repeat returns the stored message and `created=False`.
  It returns only after the message is durably stored.
- Reads never return another room's data; `include_internal=False` hides internal notes everywhere
  (history, last message, unread counts).
- Nothing is ever physically deleted from a room's history: a deleted message is a tombstone.
- Methods that change one record return the record as it is after the change, or None when it does not exist.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from datetime import datetime

from ..models import Membership, Message, Project, Room, RoomSummary, User


class DuplicateKey(Exception):
    """A unique key (a username, a project's external id) is taken."""


@dataclass(slots=True, frozen=True)
class Revision:
    """An earlier text of a message, kept for audit when it was edited or deleted."""

    message_id: str
    text: str
    replaced_at: datetime
    replaced_by: str


class Store(abc.ABC):
    backend: str = "abstract"

    # lifecycle -----------------------------------------------------------------------------------
    @abc.abstractmethod
    async def open(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise if the store cannot answer."""

    # users ---------------------------------------------------------------------------------------
    @abc.abstractmethod
    async def create_user(self, user: User, password_hash: str | None = None) -> User:
        """Raise DuplicateKey if the username is taken."""

    @abc.abstractmethod
    async def get_user(self, user_id: str) -> User | None: ...

    @abc.abstractmethod
    async def get_users(self, user_ids: list[str]) -> dict[str, User]: ...

    @abc.abstractmethod
    async def get_user_by_username(self, username: str) -> User | None: ...

    @abc.abstractmethod
    async def list_users(self) -> list[User]: ...

    @abc.abstractmethod
    async def update_user(
        self,
        user_id: str,
        *,
        name: str | None = None,
        org: str | None = None,
        roles: list[str] | None = None,
        active: bool | None = None,
    ) -> User | None: ...

    @abc.abstractmethod
    async def get_password_hash(self, user_id: str) -> str | None: ...

    @abc.abstractmethod
    async def set_password_hash(self, user_id: str, password_hash: str) -> None: ...

    @abc.abstractmethod
    async def count_users(self) -> int: ...

    # projects ------------------------------------------------------------------------------------
    @abc.abstractmethod
    async def create_project(self, project: Project) -> Project:
        """Raise DuplicateKey if the external id is taken."""

    @abc.abstractmethod
    async def get_projects(self, project_ids: list[str]) -> dict[str, Project]: ...

    # rooms and members ---------------------------------------------------------------------------
    @abc.abstractmethod
    async def create_room(self, room: Room) -> Room: ...

    @abc.abstractmethod
    async def get_room(self, room_id: str) -> Room | None: ...

    @abc.abstractmethod
    async def add_member(self, membership: Membership) -> bool:
        """Add a member (or change their role); True if they were not a member before."""

    @abc.abstractmethod
    async def remove_member(self, room_id: str, user_id: str) -> bool:
        """True if they were a member."""

    @abc.abstractmethod
    async def get_membership(self, room_id: str, user_id: str) -> Membership | None: ...

    @abc.abstractmethod
    async def list_members(self, room_id: str) -> list[Membership]: ...

    @abc.abstractmethod
    async def list_memberships(self, user_id: str) -> list[Membership]: ...

    @abc.abstractmethod
    async def set_last_read(self, room_id: str, user_id: str, seq: int) -> int | None:
        """Move the read marker forward to `seq` (never back, never past the room's last seq).

        Returns the marker after the call, or None if the user is not a member."""

    @abc.abstractmethod
    async def room_summaries(self, user_id: str, *, include_internal: bool) -> list[RoomSummary]:
        """Every room the user is in, with their unread count and the room's last visible message."""

    # messages ------------------------------------------------------------------------------------
    @abc.abstractmethod
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
    ) -> tuple[Message, bool]:
        """Store a message with the room's next seq. Returns (message, created)."""

    @abc.abstractmethod
    async def get_message(self, message_id: str) -> Message | None: ...

    @abc.abstractmethod
    async def list_messages(
        self,
        room_id: str,
        *,
        before_seq: int | None = None,
        after_seq: int | None = None,
        limit: int = 50,
        include_internal: bool = True,
    ) -> tuple[list[Message], bool]:
        """A page of a room's messages, ascending by seq, and whether more lie beyond it.

        No bounds: the newest `limit`. `before_seq`: the newest `limit` below it.
        `after_seq`: the oldest `limit` above it. Both: the oldest `limit` between them."""

    @abc.abstractmethod
    async def edit_message(self, message_id: str, text: str, edited_at: datetime, editor_id: str) -> Message | None:
        """Replace the text, keeping the old text as a Revision."""

    @abc.abstractmethod
    async def delete_message(self, message_id: str, deleted_at: datetime, deleter_id: str) -> Message | None:
        """Turn the message into a tombstone, keeping its text as a Revision."""

    @abc.abstractmethod
    async def list_revisions(self, message_id: str) -> list[Revision]: ...
