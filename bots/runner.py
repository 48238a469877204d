"""Runs the bots: a bus subscriber that never holds up delivery.

`BotRunner.__call__` (the bus subscriber) only puts the event in an inbox. One dispatcher task takes events in
publish order, looks up the room, decides which bots are on there (settings `[bots.<name>]`: room kinds and
project stages), adds bot users to rooms they are on in, routes slash commands, and hands each bot its jobs on a
queue of its own. Each bot has one worker task, so a bot sees its events in order, a slow bot delays nobody else,
and every job runs under `bot_timeout_seconds`. Failures and time-outs are logged with the bot's name, the event
type and the room — never message text.

Messages sent by bots (kind `bot`, the system user too) never reach bots: a bot cannot trigger a bot, or itself.
"""

from __future__ import annotations

import asyncio
import logging
import re
import traceback
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from chatserver.actions import messages, rooms, tickets
from chatserver.errors import ChatError
from chatserver.events import (
    Event,
    ExpertSessionChanged,
    MemberAdded,
    MemberRemoved,
    MessageDeleted,
    MessageEdited,
    MessageSent,
    RoomCreated,
    RoomUpdated,
    TicketChanged,
)
from chatserver.models import Message, Room, User
from chatserver.services import Services
from chatserver.settings import BotSettings, SettingsError
from chatserver.storage import Store

from .base import ActionRefused, Bot, Command, CommandCall, FiledTicket, IncomingMessage, Member, Person, RoomInfo

log = logging.getLogger("chatserver.bots")

# A command is a slash and a word, then a space or the end: "/api/payments 返回 E2005" is a message about a path.
_COMMAND = re.compile(r"/(\w+)(?:\s+(.*))?", re.DOTALL)
_INBOX_SIZE = 10_000  # events waiting for the dispatcher; beyond this, events are dropped (and logged)
_QUEUE_SIZE = 1_000  # jobs waiting for one bot
_STATE_KEYS = 1_000  # keys one bot may keep
_ROOMS_CACHED = 10_000  # rooms the dispatcher keeps looked up
HELP_BOT = "help"
Job = Callable[[], Awaitable[None]]


def bot_username(bot: Bot) -> str:
    return f"@{bot.name}"


def person(user: User) -> Person:
    return Person(id=user.id, name=user.name, org=user.org, kind=user.kind, roles=tuple(user.roles))


def _room_id_of(event: Event) -> str | None:
    match event:
        case MessageSent(message=m) | MessageEdited(message=m) | MessageDeleted(message=m):
            return m.room_id
        case MemberAdded(room_id=r) | MemberRemoved(room_id=r) | RoomCreated(room_id=r) | RoomUpdated(room_id=r):
            return r
        case ExpertSessionChanged(session=s):
            return s.room_id
        case TicketChanged(ticket=t):
            return t.room_id
        case _:
            return None  # not a room's event (presence, typing, reads, notices...): bots do not hear of it


def _event_key(event: Event) -> str | None:
    """A stable name for an event that may be handled again (a replay): replies to it get client_msg_ids made
    from it, so the store keeps one reply however often the event comes (append_message is idempotent)."""
    if isinstance(event, TicketChanged):
        return f"ticket-{event.ticket.id}-{event.change.seq if event.change else 0}"
    return None


def _event_internal(event: Event) -> bool:
    """Events about something only staff may see: a bot's replies to them are internal notes."""
    return isinstance(event, TicketChanged) and event.ticket.internal


class _StoredState:
    """A bot's state in the store: it survives restarts and is shared by every server process."""

    def __init__(self, store: Store, bot: str) -> None:
        self._store = store
        self._bot = bot

    async def get(self, key: str, default: Any = None) -> Any:
        value = await self._store.get_bot_value(self._bot, key)
        return default if value is None else value

    async def set(self, key: str, value: Any) -> None:
        await self._store.set_bot_value(self._bot, key, value, max_keys=_STATE_KEYS)

    async def add(self, key: str, value: Any) -> bool:
        return await self._store.set_bot_value(self._bot, key, value, max_keys=_STATE_KEYS, only_if_absent=True)

    async def delete(self, key: str) -> None:
        await self._store.delete_bot_value(self._bot, key)


@dataclass
class _Running:
    """One bot as the runner keeps it."""

    bot: Bot
    settings: BotSettings
    state: _StoredState
    queue: asyncio.Queue[tuple[str, str | None, Job]] = field(default_factory=lambda: asyncio.Queue(_QUEUE_SIZE))
    user: User | None = None


class _Context:
    """The `BotContext` a bot gets for one event: bound to the bot, the room, and the message being handled."""

    def __init__(
        self,
        runner: BotRunner,
        running: _Running,
        room: RoomInfo | None,
        trigger: Message | None = None,
        event: Event | None = None,
        *,
        command: bool = False,
    ) -> None:
        self._runner = runner
        self._running = running
        self._room = room
        self._trigger = trigger
        self._event_key = _event_key(event) if event is not None else None
        self._internal = trigger.internal if trigger is not None else (event is not None and _event_internal(event))
        self._sent = 0
        self._command = command  # handling a person's command: file_ticket acts on their behalf

    @property
    def room(self) -> RoomInfo | None:
        return self._room

    @property
    def config(self) -> Mapping[str, Any]:
        return self._running.settings.config

    @property
    def state(self) -> _StoredState:
        return self._running.state

    def available_commands(self, who: Person) -> list[Command]:
        if self._room is None:
            return []
        return self._runner.commands_for(self._room, who)

    def _client_msg_id(self) -> str:
        # One per reply to one trigger: a repeat of the same reply (a retried job) is stored once.
        self._sent += 1
        trigger = self._trigger.id if self._trigger is not None else (self._event_key or f"t{id(self)}")
        return f"bot:{self._running.bot.name}:{trigger}:{self._sent}"

    async def reply(self, text: str) -> None:
        if self._room is None:
            raise RuntimeError("this event has no room to reply in")
        trigger = self._trigger
        await messages.send_message(
            self._runner.services,
            self._user(),
            room_id=self._room.id,
            text=text,
            client_msg_id=self._client_msg_id(),
            reply_to=trigger.id if trigger is not None else None,
            internal=self._internal,
        )

    async def send(self, room_id: str, text: str) -> None:
        await messages.send_message(
            self._runner.services, self._user(), room_id=room_id, text=text, client_msg_id=self._client_msg_id()
        )

    async def tell(self, user_id: str, text: str) -> None:
        if self._room is None:
            raise RuntimeError("this event has no room to tell anyone in")
        services = self._runner.services
        await messages.send_notice(services, self._user(), room_id=self._room.id, user_id=user_id, text=text)

    async def members(self) -> list[Member]:
        if self._room is None:
            return []
        store = self._runner.services.store
        memberships = await store.list_members(self._room.id)
        users = await store.get_users([m.user_id for m in memberships])
        # Disabled people stay members (their history is theirs) but can act on nothing: a bot never counts on them.
        return [
            Member(person(users[m.user_id]), m.role)
            for m in memberships
            if m.user_id in users and users[m.user_id].active
        ]

    def _may_read(self, message: Message) -> bool:
        if self._room is None or message.room_id != self._room.id or message.deleted:
            return False
        if not message.internal:
            return True
        return self._running.bot.reads_internal_notes or (self._trigger is not None and self._trigger.internal)

    async def message(self, message_id: str) -> IncomingMessage | None:
        found = await self._runner.services.store.get_message(message_id)
        if found is None or not self._may_read(found):
            return None
        return (await self._incoming([found]))[0]

    async def history(self, *, after_seq: int | None = None, limit: int = 50) -> list[IncomingMessage]:
        if self._room is None:
            return []
        page, _ = await self._runner.services.store.list_messages(
            self._room.id,
            after_seq=after_seq,
            limit=max(1, min(limit, 200)),
            include_internal=self._running.bot.reads_internal_notes,
        )
        return await self._incoming([m for m in page if self._may_read(m)])

    async def file_ticket(self, title: str, description: str, source_message_id: str) -> FiledTicket:
        trigger = self._trigger
        if self._room is None or trigger is None or not self._command:
            raise RuntimeError("tickets are filed while handling a command")
        services = self._runner.services
        caller = await services.store.get_user(trigger.sender_id)
        if caller is None or not caller.active or caller.kind == "bot":
            raise ActionRefused("forbidden", "the command's sender cannot file tickets")
        try:
            ticket, created = await tickets.file_ticket(
                services,
                caller,
                room_id=self._room.id,
                title=title,
                description=description,
                source_message_id=source_message_id,
                command_message_id=trigger.id,
            )
        except ChatError as exc:
            raise ActionRefused(exc.code, exc.message) from None
        return FiledTicket(ticket.number, ticket.title, ticket.status, ticket.link, created, ticket.internal)

    async def _incoming(self, found: list[Message]) -> list[IncomingMessage]:
        senders = await self._runner.services.store.get_users(list({m.sender_id for m in found}))
        return [_incoming_message(m, senders[m.sender_id]) for m in found if m.sender_id in senders]

    def _user(self) -> User:
        assert self._running.user is not None, "the runner has not started"
        return self._running.user


class BotRunner:
    """Subscribe an instance to the bus; `start()` once the store is open, `stop()` before it closes."""

    def __init__(self, services: Services, bots: Sequence[Bot]) -> None:
        self.services = services
        configured = services.settings.bots
        names = [bot.name for bot in bots]
        if len(set(names)) != len(names):
            raise ValueError(f"two bots share a name: {names}")
        unknown = sorted(set(configured) - set(names))
        if unknown:
            raise SettingsError(f"bad setting: bots: no bot named {', '.join(unknown)} (there are: {', '.join(names)})")
        self._bots = {
            bot.name: _Running(bot, configured.get(bot.name, BotSettings()), _StoredState(services.store, bot.name))
            for bot in bots
        }
        self._inbox: asyncio.Queue[Event] = asyncio.Queue(_INBOX_SIZE)
        self._tasks: list[asyncio.Task[None]] = []
        self._bot_user_ids: set[str] = set()
        self._rooms: dict[str, tuple[Room, RoomInfo]] = {}  # the dispatcher's room look-ups (_cached_room)
        self._rooms_version = -1

    # lifecycle -----------------------------------------------------------------------------------
    async def start(self) -> None:
        """Create missing bot users, start each enabled bot (`on_start`: a bad `config` stops start-up here), bring
        bots into the existing rooms they are on in, start the tasks."""
        for running in self._bots.values():
            running.user = await rooms.ensure_bot_user(
                self.services, bot_username(running.bot), running.bot.display_name
            )
            self._bot_user_ids.add(running.user.id)
        for name, running in self._bots.items():
            if running.settings.enabled:
                try:
                    await running.bot.on_start(_Context(self, running, None))
                except ValueError as exc:
                    raise SettingsError(f"bad setting: bots.{name}.config: {exc}") from exc
        for room in await self._existing_rooms():
            await self._join(room, await self._room_info(room))
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._dispatch(), name="bots:dispatch"))
        for name, running in self._bots.items():
            self._tasks.append(loop.create_task(self._work(running), name=f"bots:{name}"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def __call__(self, event: Event) -> None:
        """The bus subscriber: never waits."""
        if not self._tasks or _room_id_of(event) is None:
            return
        try:
            self._inbox.put_nowait(event)
        except asyncio.QueueFull:
            log.warning("bot inbox full: event dropped", extra={"event_type": type(event).__name__})

    # where bots are on ---------------------------------------------------------------------------
    def is_on(self, running: _Running, room: RoomInfo) -> bool:
        s = running.settings
        if not s.enabled or room.kind not in s.room_kinds:
            return False
        return room.stage is None or room.stage in s.stages

    def commands_for(self, room: RoomInfo, who: Person) -> list[Command]:
        return [
            command
            for running in self._bots.values()
            if self.is_on(running, room)
            for command in running.bot.commands
            if who.is_staff or not command.staff_only
        ]

    async def _existing_rooms(self) -> list[Room]:
        store = self.services.store
        room_ids = [p.room_id for p in await store.list_projects() if p.room_id]
        room_ids += [s.room_id for s in await store.list_expert_sessions() if s.status != "closed"]
        found = [await store.get_room(room_id) for room_id in room_ids]
        return [room for room in found if room is not None]

    async def _room_info(self, room: Room) -> RoomInfo:
        stage = None
        if room.project_id:
            project = (await self.services.store.get_projects([room.project_id])).get(room.project_id)
            stage = project.stage if project is not None else None
        return RoomInfo(id=room.id, kind=room.kind, title=room.title, stage=stage, read_only=room.read_only)

    async def _join(self, room: Room, info: RoomInfo) -> None:
        """Bots join the rooms they are on in (when a room is made, when its stage moves, at start). They are not
        taken out when a stage moves past them: they stop acting there, and the room keeps their history."""
        if room.read_only:
            return
        for running in self._bots.values():
            if running.user is not None and running.bot.joins_rooms and self.is_on(running, info):
                await rooms.add_member(self.services, room_id=room.id, user_id=running.user.id, role="bot")

    # dispatch ------------------------------------------------------------------------------------
    async def _dispatch(self) -> None:
        while True:
            event = await self._inbox.get()
            try:
                await self._route(event)
            except Exception as exc:
                self._log_failure("bot dispatch failed", exc, None, event)

    async def _route(self, event: Event) -> None:
        if isinstance(event, MessageSent | MessageEdited | MessageDeleted) and event.sender.kind == "bot":
            return  # messages sent by bots never trigger bots
        room_id = _room_id_of(event)
        found = await self._cached_room(room_id, event) if room_id else None
        if found is None:
            return
        room, info = found
        if isinstance(event, RoomCreated | RoomUpdated | ExpertSessionChanged):
            await self._join(room, info)
        on = [running for running in self._bots.values() if self.is_on(running, info)]
        if not on:
            return
        if isinstance(event, MessageSent):
            text = event.message.text.strip()
            if command := _COMMAND.fullmatch(text):
                self._route_command(event, command, info, on)
                return
        incoming = _incoming(event) if isinstance(event, MessageSent) else None
        for running in on:
            bot = running.bot
            if type(event) not in bot.events:
                continue
            if isinstance(event, MessageSent):
                assert incoming is not None
                if event.message.internal and not bot.reads_internal_notes:
                    continue
                try:
                    if not bot.wants(incoming):
                        continue  # most messages: no context, no queue, no work for the bot
                except Exception as exc:
                    self._log_failure("bot failed", exc, running, event)
                    continue
                ctx = _Context(self, running, info, event.message, event)
                self._enqueue(running, event, partial(bot.on_message, incoming, ctx))
            else:
                ctx = _Context(self, running, info, None, event)
                self._enqueue(running, event, partial(bot.on_event, event, ctx))

    async def _cached_room(self, room_id: str, event: Event) -> tuple[Room, RoomInfo] | None:
        """The room and what bots see of it (kind, stage), read once per room until something changes rooms: the
        events that do (a room made, a stage move or closing, an expert session) come through this same inbox in
        publish order and empty the cache before they are routed, as does any write to rooms or memberships in
        this process (`Store.access_version`)."""
        store = self.services.store
        version = store.access_version
        if version != self._rooms_version or isinstance(event, RoomCreated | RoomUpdated | ExpertSessionChanged):
            self._rooms.clear()
            self._rooms_version = version
        found = self._rooms.get(room_id)
        if found is None:
            room = await store.get_room(room_id)
            if room is None:
                return None
            found = (room, await self._room_info(room))
            if store.access_version == version and len(self._rooms) < _ROOMS_CACHED:
                self._rooms[room_id] = found
        return found

    def _route_command(self, event: MessageSent, match: re.Match[str], info: RoomInfo, on: list[_Running]) -> None:
        caller = person(event.sender)
        incoming = _incoming(event)
        name = match.group(1)
        args = (match.group(2) or "").strip()
        for running in on:
            for command in running.bot.commands:
                if command.name == name and (caller.is_staff or not command.staff_only):
                    call = CommandCall(command=command, args=args, caller=caller, message=incoming)
                    ctx = _Context(self, running, info, event.message, command=True)
                    self._enqueue(running, event, partial(self._run_command, running, call, ctx))
                    return
        # Unknown (or not for this user): answered privately, by the help bot where it is on, else by a bot that is.
        answerer = next((r for r in on if r.bot.name == HELP_BOT), on[0])
        ctx = _Context(self, answerer, info, event.message)
        answer = f"没有 /{name[:32]} 这个命令。输入 /help 查看本房间可用的命令。"
        self._enqueue(answerer, event, partial(ctx.tell, caller.id, answer))

    async def _run_command(self, running: _Running, call: CommandCall, ctx: _Context) -> None:
        answer = await running.bot.on_command(call, ctx)
        if not answer:
            return
        if call.command.answer == "room":
            await ctx.reply(answer)
        else:
            await ctx.tell(call.caller.id, answer)

    def _enqueue(self, running: _Running, event: Event, job: Job) -> None:
        try:
            running.queue.put_nowait((type(event).__name__, _room_id_of(event), job))
        except asyncio.QueueFull:
            log.warning(
                "bot queue full: event dropped",
                extra={"bot": running.bot.name, "event_type": type(event).__name__, "room_id": _room_id_of(event)},
            )

    # work ----------------------------------------------------------------------------------------
    async def _work(self, running: _Running) -> None:
        timeout = self.services.settings.bot_timeout_seconds
        while True:
            event_type, room_id, job = await running.queue.get()
            try:
                async with asyncio.timeout(timeout) as scope:
                    await job()
            except TimeoutError as exc:
                if scope.expired():
                    extra = {"bot": running.bot.name, "event_type": event_type, "room_id": room_id, "seconds": timeout}
                    log.warning("bot timed out", extra=extra)
                else:
                    self._log_failure("bot failed", exc, running, None, event_type, room_id)
            except Exception as exc:
                self._log_failure("bot failed", exc, running, None, event_type, room_id)

    @staticmethod
    def _log_failure(
        what: str,
        exc: Exception,
        running: _Running | None,
        event: Event | None,
        event_type: str | None = None,
        room_id: str | None = None,
    ) -> None:
        """The error's type and where it was raised; not its message, which may quote a user's text."""
        frames = traceback.extract_tb(exc.__traceback__)
        where = f"{frames[-1].filename}:{frames[-1].lineno} in {frames[-1].name}" if frames else None
        log.error(
            what,
            extra={
                "bot": running.bot.name if running else None,
                "event_type": event_type or (type(event).__name__ if event is not None else None),
                "room_id": room_id or (_room_id_of(event) if event is not None else None),
                "error": type(exc).__name__,
                "where": where,
            },
        )

    @property
    def bot_user_ids(self) -> frozenset[str]:
        return frozenset(self._bot_user_ids)


def _incoming(event: MessageSent) -> IncomingMessage:
    return _incoming_message(event.message, event.sender)


def _incoming_message(m: Message, sender: User) -> IncomingMessage:
    return IncomingMessage(
        id=m.id,
        room_id=m.room_id,
        seq=m.seq,
        text=m.text,
        sender=person(sender),
        reply_to=m.reply_to,
        internal=m.internal,
    )
