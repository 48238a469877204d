"""Ticket routes: read a room's tickets, read one, change its status (staff), and the ticket system's webhook."""

from __future__ import annotations

from aiohttp import web

from ..actions import tickets
from ..errors import InvalidPayload
from ..schemas import ChangeTicketStatus, TicketWebhook, parse
from .middleware import SERVICES, current_user, json_body
from .platform import signed_json

_MAX_NUMBER = 2**53


def _number(request: web.Request) -> int:
    raw = request.match_info["number"]
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 16 or not 1 <= int(raw) <= _MAX_NUMBER:
        raise InvalidPayload("number: must be a ticket number (1, 2, ...)")
    return int(raw)


async def room_tickets(request: web.Request) -> web.Response:
    user = await current_user(request)
    found = await tickets.list_tickets(request.app[SERVICES], user, room_id=request.match_info["room_id"])
    return web.json_response({"ok": True, "tickets": found})


async def get_ticket(request: web.Request) -> web.Response:
    user = await current_user(request)
    ticket = await tickets.get_ticket(request.app[SERVICES], user, _number(request))
    return web.json_response({"ok": True, "ticket": ticket})


async def change_ticket_status(request: web.Request) -> web.Response:
    user = await current_user(request)
    number = _number(request)
    p = parse(ChangeTicketStatus, await json_body(request))
    services = request.app[SERVICES]
    ticket, changed = await tickets.change_ticket_status(services, user, number, p.status)  # type: ignore[arg-type]
    view = (await tickets.tickets_wire(services, [ticket]))[0]
    return web.json_response({"ok": True, "changed": changed, "ticket": view})


async def ticket_webhook(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    raw, delivery_id = await signed_json(request, services.settings.ticketing_webhook_secret, sender="ticketing")
    p = parse(TicketWebhook, raw)
    ticket, changed = await tickets.apply_ticket_webhook(
        services,
        p.key,
        p.status,  # type: ignore[arg-type]
        delivery_id=delivery_id,
        version=p.version,
    )
    return web.json_response({"ok": True, "changed": changed, "number": ticket.number, "status": ticket.status})


def add_ticket_routes(app: web.Application) -> None:
    app.router.add_get("/api/rooms/{room_id}/tickets", room_tickets)
    app.router.add_get("/api/tickets/{number}", get_ticket)
    app.router.add_patch("/api/tickets/{number}", change_ticket_status)
    app.router.add_post("/api/webhooks/tickets", ticket_webhook)
