"""Tickets filed from rooms (`/ticket`): filing, status changes, reading.

Who may do what:
- file: any member of the room (staff or client) who can see the message the ticket is about, in a writable room.
  A ticket filed from an internal note, or about one, is `internal`: only staff ever see it.
- change the status: bank staff who are members of the ticket's room (clients may read, never move, a ticket),
  or the outside ticket system through its signed webhook (HTTP mode). Only the moves in `models.TICKET_MOVES`.
- read: members of the ticket's room; clients only the tickets filed publicly.

Every change is stored, then published as `TicketChanged` — here and nowhere else. Status changes run one at a
time under `services.ticket_lock`, so they are published in the order of their seqs.
"""

from __future__ import annotations

from typing import Any

from integrations.ticketing import TicketDraft, TicketingError

from ..errors import Forbidden, InvalidPayload, InvalidStatusChange, NotFound, TextTooLong, TicketingUnavailable
from ..events import TicketChanged
from ..models import (
    MAX_TICKET_TITLE_CHARS,
    TICKET_MOVES,
    TICKET_STATUS_NAMES,
    Ticket,
    TicketStatus,
    TicketSync,
    User,
    new_id,
    utcnow,
)
from ..services import Services
from ..storage import DuplicateKey
from ..text import has_visible, unsafe_character
from . import audit
from ._checks import MESSAGE_NOT_FOUND, can_see, check_text, require_member, require_writable

TICKET_NOT_FOUND = "ticket not found"
MAX_TITLE_CHARS = MAX_TICKET_TITLE_CHARS
_WEBHOOK = "ticketing"  # the delivery-id namespace of the ticket system's webhooks
_MAX_PUSHED = 16  # statuses sent to the outside system awaiting their echo (older ones are forgotten)


def _clean_title(title: str) -> str:
    """One line, something visible, at most MAX_TITLE_CHARS characters."""
    title = " ".join(title.split())
    problem = unsafe_character(title, multiline=False)
    if problem:
        raise InvalidPayload(f"title: {problem}")
    if not has_visible(title):
        raise InvalidPayload("title: give the ticket a title")
    if len(title) > MAX_TITLE_CHARS:
        raise TextTooLong(f"the title is longer than {MAX_TITLE_CHARS} characters")
    return title


async def file_ticket(
    services: Services,
    reporter: User,
    *,
    room_id: str,
    title: str,
    description: str,
    source_message_id: str,
    command_message_id: str,
) -> tuple[Ticket, bool]:
    """File a ticket about a message of the room. Returns (ticket, created).

    Idempotent per source message and visibility: filing again about the same message (a retried command,
    `/ticket` again in reply to it) returns the ticket there is of the same visibility. An internal ticket about a
    public message never answers a public filing (that would show staff's ticket to the client, and leave the
    client without one): a public filing makes its own ticket. In HTTP mode the outside system gets an idempotency
    key naming the source message (and `:internal` for internal tickets), so a retry after a failure or a time-out
    never makes a second ticket there either; a filing the outside system refused leaves nothing behind
    (`ticketing_unavailable`)."""
    store = services.store
    room, _ = await require_member(services, reporter, room_id)
    command = await store.get_message(command_message_id)
    if command is None or command.room_id != room_id or command.sender_id != reporter.id:
        raise NotFound(MESSAGE_NOT_FOUND)
    source = await store.get_message(source_message_id)
    if source is None or source.room_id != room_id or source.deleted or not can_see(reporter, source):
        raise NotFound("the message the ticket is about is not in this room")
    require_writable(room)
    title = _clean_title(title)
    if description:
        description = check_text(services, description, what="description")
    project = (await store.get_projects([room.project_id])).get(room.project_id) if room.project_id else None
    now = utcnow()
    ticket, created = await store.create_ticket(
        Ticket(
            id=new_id("t"),
            number=0,
            title=title,
            description=description,
            room_id=room_id,
            reporter_id=reporter.id,
            source_message_id=source.id,
            command_message_id=command.id,
            created_at=now,
            updated_at=now,
            project_id=room.project_id,
            internal=command.internal or source.internal,
        )
    )
    system = services.ticket_system
    if not created and (ticket.external_key is not None or system.mode == "builtin"):
        return ticket, False
    if system.mode != "builtin":  # (again, if an earlier attempt did not get as far as the key)
        draft = TicketDraft(
            idempotency_key=_idempotency_key(ticket),
            number=ticket.number,
            title=ticket.title,
            description=ticket.description,
            project=project.external_id if project else None,
            room=room.title,
            reporter=f"{reporter.name} ({reporter.org})",
            link=services.settings.resolved_public_url + ticket.link,
        )
        try:
            key = await system.create(draft)
            if key is not None:
                ticket = await store.set_ticket_external_key(ticket.id, key) or ticket
        except (TicketingError, DuplicateKey) as exc:
            if created:
                await store.discard_ticket(ticket.id)
            await audit.record(
                services,
                "ticket_filed",
                actor_id=reporter.id,
                outcome="failure",
                room_id=room_id,
                target_id=source.id,
                reason=str(exc),
            )
            raise TicketingUnavailable(f"the ticket system could not file the ticket: {exc}") from None
        except BaseException:  # cancelled or timed out meanwhile: leave nothing half-filed
            if created:
                await store.discard_ticket(ticket.id)
            raise
    await audit.record(
        services,
        "ticket_filed",
        actor_id=reporter.id,
        room_id=room_id,
        target_id=ticket.id,
        number=ticket.number,
        source_message_id=ticket.source_message_id,
        external_key=ticket.external_key,
        internal=ticket.internal,
    )
    await services.bus.publish(TicketChanged(ticket=ticket))
    return ticket, created


def _idempotency_key(ticket: Ticket) -> str:
    """Names the filing in the outside system: the source message, and the visibility (one ticket of each)."""
    return f"chat-ticket:{ticket.source_message_id}" + (":internal" if ticket.internal else "")


async def _readable(services: Services, user: User, number: int) -> Ticket:
    """The ticket if the user may read it; NotFound alike for no such ticket and one they may not see."""
    ticket = await services.store.get_ticket(number)
    if ticket is None or (ticket.internal and not user.is_staff) or not _synced(services, ticket):
        raise NotFound(TICKET_NOT_FOUND)
    try:
        await require_member(services, user, ticket.room_id)
    except NotFound:
        raise NotFound(TICKET_NOT_FOUND) from None
    return ticket


def _synced(services: Services, ticket: Ticket) -> bool:
    """In HTTP mode a ticket counts once the outside system has it (until then its filing may yet fail)."""
    return services.ticket_system.mode == "builtin" or ticket.external_key is not None


async def change_ticket_status(
    services: Services, actor: User, number: int, status: TicketStatus
) -> tuple[Ticket, bool]:
    """A staff member of the ticket's room moves it (the web client, REST). Returns (ticket, changed); the status
    it has already changes nothing. In HTTP mode the outside system is told first: if it refuses, nothing changes."""
    ticket = await _readable(services, actor, number)
    if not actor.is_staff:
        raise Forbidden("only bank staff can change a ticket's status")
    room = await services.store.get_room(ticket.room_id)
    if room is not None:
        require_writable(room)
    return await _change(services, ticket.number, status, actor_id=actor.id, source="web")


async def apply_ticket_webhook(
    services: Services,
    external_key: str,
    status: TicketStatus,
    *,
    delivery_id: str,
    version: int | None = None,
) -> tuple[Ticket, bool]:
    """The outside ticket system reports a status change (signed webhook). Returns (ticket, changed).

    Its delivery id is claimed first, whatever comes of the delivery (applied, nothing to do, refused): it has
    been seen, and a delivery id seen before changes nothing — so a delivery that changed nothing or was refused
    cannot be replayed later, when it would apply. (Unauthenticated or malformed deliveries never get here, and
    claim nothing.) Then nothing changes for a stale `version` (not newer than one the outside system reported),
    for the echo of a change the server sent it (see `_webhook_news`), or for the status the ticket has already.
    The room may be read-only (a closed project): the outside system is the system of record, so the change is
    stored and published all the same (the ticket bot posts nothing in a read-only room)."""
    store = services.store
    async with services.ticket_lock:
        seen = await store.claim_delivery(_WEBHOOK, delivery_id, f"{external_key}:{status}:{version}", utcnow())
        ticket = await store.get_ticket_by_external_key(external_key)
        if ticket is None:
            raise NotFound(TICKET_NOT_FOUND)
        if seen is not None:
            return ticket, False
        news, sync = _webhook_news(ticket, status, version)
        if not news:
            if sync != ticket.sync:
                await store.set_ticket_sync(ticket.id, sync)
            return ticket, False
        return await _apply(services, ticket, status, actor_id=None, source="webhook", sync=sync)


def _webhook_news(ticket: Ticket, status: TicketStatus, version: int | None) -> tuple[bool, TicketSync]:
    """Whether a webhook's status is news to apply, and what the server knows of the outside system after it.

    - With a `version`: one not newer than the newest the server knows (from webhooks, or the outside system's
      answers to the server's own changes) is stale: a late echo of the server's change, or a delivery overtaken
      by a later one. Nothing to apply.
    - The status of a change the server sent whose echo has not come yet (`pushed`) is that echo: it is taken off
      the list and not applied. (Echoes may come in any order: each takes off its own status only.)
    - Anything else is news."""
    known = ticket.external_version
    if version is not None and known is not None and version <= known:
        return False, ticket.sync
    newest = version if version is not None else known
    if status in ticket.pushed:
        at = ticket.pushed.index(status)
        return False, TicketSync(newest, ticket.pushed[:at] + ticket.pushed[at + 1 :])
    return True, TicketSync(newest, ticket.pushed)


async def _change(
    services: Services,
    number: int,
    status: TicketStatus,
    *,
    actor_id: str | None,
    source: str,
) -> tuple[Ticket, bool]:
    async with services.ticket_lock:
        ticket = await services.store.get_ticket(number)
        if ticket is None:
            raise NotFound(TICKET_NOT_FOUND)
        return await _apply(services, ticket, status, actor_id=actor_id, source=source, sync=None)


async def _apply(
    services: Services,
    ticket: Ticket,
    status: TicketStatus,
    *,
    actor_id: str | None,
    source: str,
    sync: TicketSync | None,
) -> tuple[Ticket, bool]:
    """Move the ticket (under `services.ticket_lock`). A change made here (`source` web) goes to the outside
    system first (HTTP mode), and is remembered so that its echo is not taken for news; a webhook's `sync` is
    stored with the change, or alone if nothing changes."""
    store = services.store
    if status == ticket.status:
        if sync is not None and sync != ticket.sync:
            await store.set_ticket_sync(ticket.id, sync)
        return ticket, False
    if status not in TICKET_MOVES[ticket.status]:
        await audit.record(
            services,
            "ticket_status_changed",
            actor_id=actor_id,
            outcome="failure",
            room_id=ticket.room_id,
            target_id=ticket.id,
            number=ticket.number,
            status_from=ticket.status,
            status_to=status,
            source=source,
        )
        raise InvalidStatusChange(
            f"a ticket that is {ticket.status} ({TICKET_STATUS_NAMES[ticket.status]}) cannot become {status}"
        )
    system = services.ticket_system
    if source != "webhook" and system.mode != "builtin":
        try:
            version = await system.update_status(ticket.external_key, status)
        except TicketingError as exc:
            raise TicketingUnavailable(f"the ticket system did not take the change: {exc}") from None
        known = ticket.external_version
        if version is not None:  # its echo will carry this version (or none newer): stale
            sync = TicketSync(version if known is None else max(known, version), ticket.pushed)
        else:  # its echo will carry this status
            sync = TicketSync(known, (*ticket.pushed, status)[-_MAX_PUSHED:])
    changed = await store.change_ticket_status(
        ticket.id,
        expected_status=ticket.status,
        status=status,
        actor_id=actor_id,
        source=source,
        at=utcnow(),
        sync=sync,
    )
    if changed is None:  # cannot happen under the lock within one process; another process moved it
        raise InvalidStatusChange("the ticket's status changed meanwhile; retry")
    updated, change = changed
    await audit.record(
        services,
        "ticket_status_changed",
        actor_id=actor_id,
        room_id=updated.room_id,
        target_id=updated.id,
        number=updated.number,
        status_from=change.status_from,
        status_to=change.status_to,
        source=source,
        seq=change.seq,
    )
    await services.bus.publish(TicketChanged(ticket=updated, change=change))
    return updated, True


async def list_tickets(services: Services, user: User, *, room_id: str) -> list[dict[str, Any]]:
    """A room's tickets, by number (clients: those filed publicly)."""
    await require_member(services, user, room_id)
    tickets = await services.store.list_tickets(room_id, include_internal=user.is_staff)
    return await tickets_wire(services, [t for t in tickets if _synced(services, t)])


async def get_ticket(services: Services, user: User, number: int) -> dict[str, Any]:
    """One ticket with its status history."""
    ticket = await _readable(services, user, number)
    changes = await services.store.list_ticket_changes(ticket.id)
    actors = await services.store.get_users([c.actor_id for c in changes if c.actor_id])
    view = (await tickets_wire(services, [ticket]))[0]
    view["changes"] = [
        {**c.to_wire(), "by": actors[c.actor_id].public() if c.actor_id in actors else None} for c in changes
    ]
    return view


async def tickets_wire(services: Services, tickets: list[Ticket]) -> list[dict[str, Any]]:
    reporters = await services.store.get_users([t.reporter_id for t in tickets])
    unknown = User(id="", username="", name="(unknown)", org="", kind="staff")
    return [t.to_wire(reporters.get(t.reporter_id, unknown)) for t in tickets]
