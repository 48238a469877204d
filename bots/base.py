"""A bot is one small class: a name, a display name, `usage()`, its slash commands, and handlers.

It acts only through the `BotContext` it is handed with each event (reply in the room, send to a room it is
in, tell one member privately, read its configuration, keep small state) — never through the store or the
Socket.IO server. The runner (`bots/runner.py`) decides which events reach it, in which rooms, and how long it
may take.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol

from chatserver.events import Event
from chatserver.models import RoomKind, Stage

Answer = Literal["caller", "room"]


@dataclass(frozen=True, slots=True)
class Command:
    """A slash command a bot offers: `/name args`."""

    name: str  # without the slash, e.g. "ticket"
    help: str  # one line for /help
    args: str = ""  # how the arguments read in /help, e.g. "标题"
    answer: Answer = "caller"  # "caller": a private `notice` to the caller only; "room": a message everyone sees
    staff_only: bool = False  # offered to (and listed for) bank staff only


@dataclass(frozen=True, slots=True)
class Person:
    """What a bot learns of a user: who they are, not their account."""

    id: str
    name: str
    org: str
    kind: str  # "staff" | "client" | "bot"
    roles: tuple[str, ...] = ()

    @property
    def is_staff(self) -> bool:
        return self.kind == "staff"


@dataclass(frozen=True, slots=True)
class Member:
    """A member of the room and their role there (e.g. `service_specialist`, `expert`, `requester`, `bot`)."""

    person: Person
    role: str


@dataclass(frozen=True, slots=True)
class RoomInfo:
    id: str
    kind: RoomKind
    title: str
    stage: Stage | None  # the project's stage; None for rooms without a project (expert rooms)
    read_only: bool = False


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """A message in a room where the bot is on. Those handed to `on_message` and commands are sent by people (never
    by a bot); those read back through `BotContext.message` and `history` may be any member's, bots' included."""

    id: str
    room_id: str
    seq: int
    text: str
    sender: Person
    reply_to: str | None
    internal: bool  # an internal note: only bots with `reads_internal_notes` see these


@dataclass(frozen=True, slots=True)
class CommandCall:
    command: Command
    args: str  # the text after `/name`, stripped
    caller: Person
    message: IncomingMessage  # the message that held the command


@dataclass(frozen=True, slots=True)
class FiledTicket:
    """A ticket as `BotContext.file_ticket` answers: `created` is False when the message had a ticket already."""

    number: int
    title: str
    status: str  # open | in_progress | resolved | closed
    link: str  # where the web client shows the source message (relative to the server's address)
    created: bool
    internal: bool = False  # staff only: never name it in an answer everyone in the room sees


class ActionRefused(Exception):
    """The server refused what a bot asked on a person's behalf; `code` and `message` as on the wire (errors)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class BotState(Protocol):
    """A bot's own small key-value state (JSON-like values), kept in the store: it survives restarts. A bot may keep
    up to 1,000 keys; `set` of a new key beyond that raises."""

    async def get(self, key: str, default: Any = None) -> Any: ...

    async def set(self, key: str, value: Any) -> None: ...

    async def add(self, key: str, value: Any) -> bool:
        """Store the value only if the key is not there yet; True if it was stored. Atomic, so two workers (or
        two server processes) racing on one key see exactly one True."""
        ...

    async def delete(self, key: str) -> None: ...


class BotContext(Protocol):
    """Everything a bot may do, bound to the bot and to the room of the event it is handling."""

    @property
    def room(self) -> RoomInfo | None: ...

    @property
    def config(self) -> Mapping[str, Any]: ...

    @property
    def state(self) -> BotState: ...

    def available_commands(self, person: Person) -> list[Command]:
        """The commands on in this room that this person may use, with their answers' mode (for /help)."""
        ...

    async def reply(self, text: str) -> None:
        """Post a message in this room (linked to the message being handled, if any). In an internal note's
        thread the reply is an internal note too."""
        ...

    async def send(self, room_id: str, text: str) -> None:
        """Post a message in another room the bot is a member of."""
        ...

    async def tell(self, user_id: str, text: str) -> None:
        """A private notice to one member of this room: only their sockets get it, and it is not stored."""
        ...

    async def members(self) -> list[Member]:
        """This room's active members (bots included) with their roles in it; disabled people are left out."""
        ...

    async def message(self, message_id: str) -> IncomingMessage | None:
        """A message of this room, or None (another room's, deleted, or an internal note the bot may not read:
        a bot reads internal notes only with `reads_internal_notes`, or when handling an internal note itself)."""
        ...

    async def history(self, *, after_seq: int | None = None, limit: int = 50) -> list[IncomingMessage]:
        """This room's messages, ascending by seq: the newest `limit`, or the oldest `limit` after `after_seq`.
        Deleted messages are left out; internal notes only for bots with `reads_internal_notes`."""
        ...

    async def file_ticket(self, title: str, description: str, source_message_id: str) -> FiledTicket:
        """While handling a command: file a ticket about a message of this room, as the person who sent the command
        (they are its reporter, and their rights apply). Idempotent per source message and visibility: a ticket
        filed from an internal note's thread (or about an internal note) is internal, and an internal ticket about a
        message never stands in for a public one. Raises ActionRefused (e.g. `ticketing_unavailable`,
        `not_found`)."""
        ...


class Bot:
    """Subclass, set the class attributes, and override what the bot needs."""

    name: ClassVar[str]  # settings key (`[bots.<name>]`) and the bot user's username `@<name>`
    display_name: ClassVar[str]  # the bot user's real display name, e.g. 云顾问助手
    commands: ClassVar[tuple[Command, ...]] = ()
    # Domain events this bot handles beyond its commands. `MessageSent` means non-command messages by people,
    # given to `on_message`; other types go to `on_event`. Only events of rooms where the bot is on arrive.
    events: ClassVar[tuple[type[Event], ...]] = ()
    reads_internal_notes: ClassVar[bool] = False
    # Whether the bot user becomes a member of the rooms it is on in. A bot that only answers commands privately
    # (`tell`) need not; `reply` and `send` need membership.
    joins_rooms: ClassVar[bool] = True

    def usage(self) -> str:
        """What the bot does, in a sentence or two (for /help)."""
        return ""

    async def on_start(self, ctx: BotContext) -> None:
        """Once, when the server starts (for a bot enabled in settings), with a context bound to no room: check
        `ctx.config` (raise ValueError to stop start-up with a message naming the setting) and warm up."""

    async def on_command(self, call: CommandCall, ctx: BotContext) -> str | None:
        """Handle one of this bot's commands; the returned text is the answer, which the runner delivers as the
        command says (to the caller or to the room)."""
        return None

    def wants(self, message: IncomingMessage) -> bool:
        """Whether `on_message` should get this message: a quick look at the message alone (synchronous, no
        store), asked before any work is queued for the bot. Every message by default; a bot that answers only
        some (a mention, a question) says so here, so the rest of a room's chat costs it nothing."""
        return True

    async def on_message(self, message: IncomingMessage, ctx: BotContext) -> None:
        """A person's message (not a command) in a room where the bot is on, that `wants` took; needs
        `MessageSent` in `events`."""

    async def on_event(self, event: Event, ctx: BotContext) -> None:
        """Another domain event listed in `events`, in a room where the bot is on."""
