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
- Tickets are numbered 1, 2, 3, ... per store with no repeats, and there is at most one per source message.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..models import (
    AuditEntry,
    ExpertSession,
    Invitation,
    Membership,
    MentionEmail,
    MentionEmailState,
    Message,
    Project,
    Room,
    RoomSummary,
    Stage,
    Ticket,
    TicketChange,
    TicketStatus,
    TicketSync,
    User,
)


class RoomClosed(Exception):
    """The room is read-only: nothing more can be stored in it."""


class BotStateFull(Exception):
    """A bot tried to keep more keys than it may."""


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
    # Change counters for the caches above the store (the namespace's signed-in users, actions' membership checks):
    # every write through this store object that changes a user (`users_version`), or a membership or a room
    # (`access_version`), bumps the counter once it is committed. A cached copy read at an older version is not
    # used again, so a change made in this process counts from the moment its write returns, whoever made it and
    # whether or not an event was published. Writes by other processes (`run.py update-user`, another server)
    # are found by `changed_elsewhere`, which the namespace asks every second.
    users_version: int = 0
    access_version: int = 0

    @abc.abstractmethod
    async def changed_elsewhere(self) -> bool:
        """Whether another process committed to the store since the last call (or since it was opened). When it did,
        both change counters are bumped first, so no cached user, membership or room read before is used again."""

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
        email: str | None = None,
        skills: list[str] | None = None,
        duty: list[str] | None = None,
        max_sessions: int | None = None,
        tokens_after: datetime | None = None,
    ) -> User | None:
        """Change the fields given (None leaves a field as it is)."""

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

    @abc.abstractmethod
    async def get_project_by_external_id(self, external_id: str) -> Project | None: ...

    @abc.abstractmethod
    async def list_projects(self) -> list[Project]:
        """Every project, oldest first."""

    @abc.abstractmethod
    async def update_project(
        self,
        project_id: str,
        *,
        stage: Stage | None = None,
        room_id: str | None = None,
        unstaffed: list[str] | None = None,
        expected_stage: Stage | None = None,
    ) -> Project | None:
        """Change the fields given. With `expected_stage`, only if the project is in that stage
        (compare-and-set, so two concurrent stage moves cannot both succeed); None if nothing matched."""

    @abc.abstractmethod
    async def record_assignment(self, project_id: str, user_id: str, role: str, at: datetime) -> None:
        """Note that a person was assigned to a project in a role (automatic staffing reads these)."""

    @abc.abstractmethod
    async def assignment_loads(self, user_ids: list[str]) -> dict[str, tuple[int, datetime | None]]:
        """For each user: (how many projects not closed they are assigned to, when they were last assigned)."""

    @abc.abstractmethod
    async def claim_delivery(self, source: str, delivery_id: str, result: str, at: datetime) -> str | None:
        """Record a webhook delivery id with its result, atomically. None if new; the stored result if seen before."""

    # audit ---------------------------------------------------------------------------------------
    @abc.abstractmethod
    async def append_audit(self, entry: AuditEntry) -> None: ...

    @abc.abstractmethod
    async def list_audit(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        actor_id: str | None = None,
        room_id: str | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """Newest first; `since` inclusive, `until` exclusive."""

    # expert desk ---------------------------------------------------------------------------------
    @abc.abstractmethod
    async def create_expert_session(self, session: ExpertSession) -> ExpertSession: ...

    @abc.abstractmethod
    async def get_expert_session(self, room_id: str) -> ExpertSession | None: ...

    @abc.abstractmethod
    async def list_expert_sessions(
        self,
        *,
        status: str | None = None,
        product: str | None = None,
        expert_id: str | None = None,
        client_id: str | None = None,
    ) -> list[ExpertSession]:
        """Oldest request first (the queue order)."""

    @abc.abstractmethod
    async def assign_expert_session(self, room_id: str, candidate_ids: list[str], at: datetime) -> str | None:
        """Atomically give a queued session to the least-busy active candidate below their `max_sessions`
        (ties: the one assigned longest ago, never-assigned first). Returns the expert id, or None if the
        session is not queued or no candidate has room. Never exceeds a limit, never assigns a session twice."""

    @abc.abstractmethod
    async def update_expert_session(
        self,
        room_id: str,
        *,
        expected_status: str,
        status: str | None = None,
        product: str | None = None,
        expert_id: str | None = None,
        clear_expert: bool = False,
        closed_at: datetime | None = None,
    ) -> ExpertSession | None:
        """Change a session only if its status is `expected_status` (compare-and-set); None otherwise."""

    @abc.abstractmethod
    async def rate_expert_session(self, room_id: str, client_id: str, rating: int, comment: str | None) -> bool:
        """Store the client's rating of a closed session, once. False if not theirs, not closed, or rated."""

    # rooms and members ---------------------------------------------------------------------------
    @abc.abstractmethod
    async def create_room(self, room: Room) -> Room: ...

    @abc.abstractmethod
    async def get_room(self, room_id: str) -> Room | None: ...

    @abc.abstractmethod
    async def update_room(
        self, room_id: str, *, title: str | None = None, read_only: bool | None = None
    ) -> Room | None: ...

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
        mentions: list[str] | None = None,
        into_read_only: bool = False,
    ) -> tuple[Message, bool]:
        """Store a message with the room's next seq. Returns (message, created). A read-only room refuses it with
        `RoomClosed` in the same transaction that would store it (so a send checked just before a room closes
        cannot land after the close), unless `into_read_only` (the system's notices)."""

    @abc.abstractmethod
    async def find_message(self, room_id: str, sender_id: str, client_msg_id: str) -> Message | None:
        """The message a sender already stored under this client_msg_id in this room, if any."""

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
    async def edit_message(
        self, message_id: str, text: str, edited_at: datetime, editor_id: str, *, mentions: list[str] | None = None
    ) -> Message | None:
        """Replace the text (and the mentions, when given), keeping the old text as a Revision."""

    @abc.abstractmethod
    async def delete_message(self, message_id: str, deleted_at: datetime, deleter_id: str) -> Message | None:
        """Turn the message into a tombstone (no text, no mentions), keeping its text as a Revision."""

    @abc.abstractmethod
    async def list_revisions(self, message_id: str) -> list[Revision]: ...

    # bots' state ---------------------------------------------------------------------------------
    @abc.abstractmethod
    async def get_bot_value(self, bot: str, key: str) -> Any | None:
        """A value a bot stored (JSON-like), or None."""

    @abc.abstractmethod
    async def set_bot_value(
        self, bot: str, key: str, value: Any, *, max_keys: int, only_if_absent: bool = False
    ) -> bool:
        """Store a JSON-like value under (bot, key); False (and nothing changed) if `only_if_absent` and the key is
        there. Raises BotStateFull when a new key would take the bot past `max_keys`. Atomic."""

    @abc.abstractmethod
    async def delete_bot_value(self, bot: str, key: str) -> None: ...

    # mention emails ------------------------------------------------------------------------------
    @abc.abstractmethod
    async def queue_mention_emails(self, message_id: str, room_id: str, user_ids: list[str], at: datetime) -> list[str]:
        """Queue a pending mention email for each user who has none for this message yet (whatever its state).
        Returns the users newly queued."""

    @abc.abstractmethod
    async def list_mention_emails(self, *, state: MentionEmailState, user_id: str | None = None) -> list[MentionEmail]:
        """Oldest queued first."""

    @abc.abstractmethod
    async def finish_mention_emails(
        self,
        user_id: str,
        message_ids: list[str],
        *,
        state: MentionEmailState,
        expected: MentionEmailState,
        at: datetime,
    ) -> list[str]:
        """Move the user's mention emails for these messages from `expected` to `state` (compare-and-set: two
        senders cannot both claim one). Returns the message ids that moved."""

    # invitations ---------------------------------------------------------------------------------
    @abc.abstractmethod
    async def create_invitation(self, invitation: Invitation) -> Invitation:
        """Store an invitation and revoke the user's other open ones, at once."""

    @abc.abstractmethod
    async def get_invitation(self, token_hash: str) -> Invitation | None: ...

    @abc.abstractmethod
    async def accept_invitation(self, token_hash: str, password_hash: str, at: datetime) -> Invitation | None:
        """Atomically, if the invitation is open at `at` (not used, not revoked, not expired) and its user active:
        mark it used, set the user's password and void their earlier tokens (`tokens_after`). None otherwise, and
        nothing changed."""

    # tickets -------------------------------------------------------------------------------------
    @abc.abstractmethod
    async def create_ticket(self, ticket: Ticket) -> tuple[Ticket, bool]:
        """Store a ticket under the next number (the given `number` is ignored), atomically. Idempotent on
        (`source_message_id`, `internal`): if a ticket of that visibility exists for that message, returns it and
        False, and stores nothing. (An internal ticket about a message never stands in for a public one.)"""

    @abc.abstractmethod
    async def discard_ticket(self, ticket_id: str) -> bool:
        """Remove a ticket that has no external key and no status change yet (its filing in the outside system
        failed). True if removed."""

    @abc.abstractmethod
    async def set_ticket_external_key(self, ticket_id: str, external_key: str) -> Ticket | None:
        """Raise DuplicateKey if another ticket has that key."""

    @abc.abstractmethod
    async def get_ticket(self, number: int) -> Ticket | None: ...

    @abc.abstractmethod
    async def get_ticket_by_external_key(self, external_key: str) -> Ticket | None: ...

    @abc.abstractmethod
    async def list_tickets(self, room_id: str, *, include_internal: bool) -> list[Ticket]:
        """A room's tickets by number; `include_internal=False` leaves out those filed from internal notes."""

    @abc.abstractmethod
    async def change_ticket_status(
        self,
        ticket_id: str,
        *,
        expected_status: TicketStatus,
        status: TicketStatus,
        actor_id: str | None,
        source: str,
        at: datetime,
        sync: TicketSync | None = None,
    ) -> tuple[Ticket, TicketChange] | None:
        """Compare-and-set: only if the ticket's status is `expected_status`, set `status`, count the change
        (`change_seq` + 1) and record it in the ticket's history, in one transaction. None if nothing matched.
        `sync`, if given, is stored with the change (`external_version`, `pushed`)."""

    @abc.abstractmethod
    async def set_ticket_sync(self, ticket_id: str, sync: TicketSync) -> None:
        """Store what the server knows of the outside system's view (`external_version`, `pushed`)."""

    @abc.abstractmethod
    async def list_ticket_changes(self, ticket_id: str) -> list[TicketChange]:
        """A ticket's status history, by seq."""
