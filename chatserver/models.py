"""The domain's records. Plain data, no I/O; `to_wire` gives the shapes of docs/protocol.md."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

UserKind = Literal["staff", "client", "bot"]
RoomKind = Literal["project", "expert"]
Stage = Literal["presales", "implementation", "aftersales", "closed"]

STAFF_ROLES = frozenset(
    {"account_manager", "solution_expert", "service_specialist", "developer", "after_sales", "admin"}
)
CLIENT_ROLES = frozenset({"client_admin", "client_member"})
STAGES: tuple[Stage, ...] = ("presales", "implementation", "aftersales", "closed")


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(ts: datetime | None) -> str | None:
    """UTC ISO 8601 with millisecond precision and a `Z`."""
    if ts is None:
        return None
    if ts.tzinfo is not UTC:  # the store's datetimes are already UTC: no conversion
        ts = ts.astimezone(UTC)
    # isoformat is C code, ~2x faster than strftime; it ends "+00:00" for UTC, and truncates to milliseconds.
    return ts.isoformat(timespec="milliseconds")[:-6] + "Z"


@dataclass(slots=True)
class User:
    id: str
    username: str
    name: str
    org: str
    kind: UserKind
    roles: list[str] = field(default_factory=list)
    active: bool = True
    created_at: datetime = field(default_factory=utcnow)
    email: str | None = None
    skills: list[str] = field(default_factory=list)  # products this person is skilled in (staff)
    duty: list[str] = field(default_factory=list)  # products this person is on after-sales duty for
    max_sessions: int = 3  # concurrent expert sessions this person takes
    tokens_after: datetime | None = None  # tokens issued before this (a password change, a disable) are void

    @property
    def is_staff(self) -> bool:
        return self.kind == "staff"

    @property
    def is_admin(self) -> bool:
        return self.kind == "staff" and "admin" in self.roles

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "org": self.org, "kind": self.kind}

    def to_wire(self) -> dict[str, Any]:
        return {
            **self.public(),
            "username": self.username,
            "roles": list(self.roles),
            "active": self.active,
            "email": self.email,
            "skills": list(self.skills),
            "duty": list(self.duty),
            "max_sessions": self.max_sessions,
        }


@dataclass(slots=True)
class Project:
    id: str
    external_id: str
    name: str
    client_org: str
    products: list[str]
    stage: Stage
    created_at: datetime = field(default_factory=utcnow)
    room_id: str | None = None
    unstaffed: list[str] = field(default_factory=list)  # roles that could not be filled automatically

    def to_wire(self, *, admin_view: bool = False) -> dict[str, Any]:
        """`unstaffed` (an internal staffing problem) only in the admins' view."""
        view: dict[str, Any] = {
            "id": self.id,
            "external_id": self.external_id,
            "name": self.name,
            "client_org": self.client_org,
            "products": list(self.products),
            "stage": self.stage,
            "room_id": self.room_id,
        }
        if admin_view:
            view["unstaffed"] = list(self.unstaffed)
        return view


@dataclass(slots=True)
class Room:
    id: str
    kind: RoomKind
    title: str
    project_id: str | None = None
    read_only: bool = False
    last_seq: int = 0
    created_at: datetime = field(default_factory=utcnow)


@dataclass(slots=True)
class Membership:
    room_id: str
    user_id: str
    role: str
    last_read_seq: int = 0
    joined_at: datetime = field(default_factory=utcnow)


@dataclass(slots=True)
class Message:
    id: str
    room_id: str
    seq: int
    sender_id: str
    text: str
    client_msg_id: str
    created_at: datetime
    reply_to: str | None = None
    internal: bool = False
    edited_at: datetime | None = None
    deleted: bool = False
    mentions: list[str] = field(default_factory=list)  # ids of the members the text mentions (`@真实姓名`)

    def to_wire(self, sender: User) -> dict[str, Any]:
        return {
            "id": self.id,
            "room_id": self.room_id,
            "seq": self.seq,
            "sender": sender.public(),
            "text": "" if self.deleted else self.text,
            "client_msg_id": self.client_msg_id,
            "reply_to": self.reply_to,
            "internal": self.internal,
            "created_at": iso(self.created_at),
            "edited_at": iso(self.edited_at),
            "deleted": self.deleted,
            "mentions": [] if self.deleted else list(self.mentions),
        }


@dataclass(slots=True)
class RoomSummary:
    """A room as one member sees it in their room list."""

    room: Room
    membership: Membership
    unread: int
    last_message: Message | None


# The only stage moves there are: one step forward at a time.
NEXT_STAGE: dict[str, str] = {"presales": "implementation", "implementation": "aftersales", "aftersales": "closed"}

ExpertSessionStatus = Literal["queued", "active", "closed"]


@dataclass(slots=True)
class ExpertSession:
    """A client's one-to-one session with a product expert; its id is its room's id."""

    room_id: str
    client_id: str
    product: str
    status: ExpertSessionStatus
    requested_at: datetime
    requested_by: str
    expert_id: str | None = None
    assigned_at: datetime | None = None
    closed_at: datetime | None = None
    rating: int | None = None
    comment: str | None = None

    def to_wire(self) -> dict[str, Any]:
        return {
            "room_id": self.room_id,
            "client_id": self.client_id,
            "product": self.product,
            "status": self.status,
            "expert_id": self.expert_id,
            "requested_at": iso(self.requested_at),
            "assigned_at": iso(self.assigned_at),
            "closed_at": iso(self.closed_at),
            "rating": self.rating,
            "comment": self.comment,
        }


@dataclass(slots=True)
class AuditEntry:
    """Who did what, when, and how it ended. `detail` holds what an auditor needs (an old text, a new stage)."""

    id: str
    at: datetime
    actor_id: str | None  # None: the system or an outside system
    action: str
    outcome: str  # "success" | "failure"
    room_id: str | None = None
    target_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": iso(self.at),
            "actor_id": self.actor_id,
            "action": self.action,
            "outcome": self.outcome,
            "room_id": self.room_id,
            "target_id": self.target_id,
            "detail": dict(self.detail),
        }


MentionEmailState = Literal["pending", "sent", "skipped"]


@dataclass(slots=True)
class MentionEmail:
    """One (person, message) a mention email is or was due for: queued `pending`, then `sent` or `skipped`.
    There is at most one per person and message, ever: nobody is emailed about the same message twice."""

    user_id: str
    message_id: str
    room_id: str
    queued_at: datetime
    state: MentionEmailState = "pending"
    done_at: datetime | None = None


@dataclass(slots=True)
class Invitation:
    """A one-time link to set a password, emailed to a person the platform's payload created. Only the token's
    hash is kept; a newer invitation for the same person revokes the older ones."""

    token_hash: str
    user_id: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None
    revoked_at: datetime | None = None


TicketStatus = Literal["open", "in_progress", "resolved", "closed"]
TICKET_STATUSES: tuple[TicketStatus, ...] = ("open", "in_progress", "resolved", "closed")
# The status moves there are. `closed` is final but for a reopen; `resolved` may go back to work or be closed.
TICKET_MOVES: dict[str, frozenset[str]] = {
    "open": frozenset({"in_progress", "resolved", "closed"}),
    "in_progress": frozenset({"open", "resolved", "closed"}),
    "resolved": frozenset({"in_progress", "closed"}),
    "closed": frozenset({"open"}),
}
MAX_TICKET_TITLE_CHARS = 200
TICKET_STATUS_NAMES = {"open": "待处理", "in_progress": "处理中", "resolved": "已解决", "closed": "已关闭"}


@dataclass(frozen=True, slots=True)
class TicketSync:
    """What the server knows of a ticket in the outside system (HTTP mode), to tell its echoes from news:
    `external_version`, the newest version of the ticket the outside system has reported (the `version` of its
    webhooks and answers), and `pushed`, the statuses the server sent it whose webhook has not come back yet (for
    outside systems that send no version)."""

    external_version: int | None = None
    pushed: tuple[TicketStatus, ...] = ()


@dataclass(slots=True)
class Ticket:
    """A ticket filed from a room. `number` is sequential per server; `source_message_id` (the message the ticket
    is about: the quoted one, or the command itself) is unique per visibility (`internal`), which makes filing
    idempotent. `change_seq` counts the status changes (the history's seqs are 1..change_seq). `internal`: filed
    from an internal note, or about one: staff only. `external_key`: the outside system's key (HTTP mode); None in
    built-in mode. `external_version`, `pushed`: see TicketSync."""

    id: str
    number: int
    title: str
    description: str
    room_id: str
    reporter_id: str
    source_message_id: str
    command_message_id: str
    created_at: datetime
    updated_at: datetime
    project_id: str | None = None
    internal: bool = False
    status: TicketStatus = "open"
    external_key: str | None = None
    change_seq: int = 0
    external_version: int | None = None
    pushed: tuple[TicketStatus, ...] = ()

    @property
    def sync(self) -> TicketSync:
        return TicketSync(self.external_version, self.pushed)

    @property
    def link(self) -> str:
        """Where the web client shows the source message (relative to the server's address)."""
        return f"/#room={self.room_id}&msg={self.source_message_id}"

    def to_wire(self, reporter: User) -> dict[str, Any]:
        return {
            "number": self.number,
            "title": self.title,
            "description": self.description,
            "status": self.status,
            "room_id": self.room_id,
            "project_id": self.project_id,
            "reporter": reporter.public(),
            "source_message_id": self.source_message_id,
            "link": self.link,
            "internal": self.internal,
            "external_key": self.external_key,
            "change_seq": self.change_seq,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }


@dataclass(slots=True, frozen=True)
class TicketChange:
    """One status change of a ticket: the `seq`-th (1, 2, ...), by a person (`actor_id`) or the outside system."""

    ticket_id: str
    seq: int
    status_from: TicketStatus
    status_to: TicketStatus
    actor_id: str | None
    source: str  # "web" (REST, the web client) | "webhook" (the outside ticket system)
    at: datetime

    def to_wire(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "from": self.status_from,
            "to": self.status_to,
            "actor_id": self.actor_id,
            "source": self.source,
            "at": iso(self.at),
        }
