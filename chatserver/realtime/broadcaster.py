"""Turns domain events into Socket.IO emits, and keeps sockets' room subscriptions in step with membership."""

from __future__ import annotations

import logging

import socketio

from ..actions import experts, rooms, tickets
from ..events import (
    Event,
    ExpertQueueChanged,
    ExpertSessionChanged,
    MemberAdded,
    MemberRemoved,
    MessageDeleted,
    MessageEdited,
    MessageSent,
    NoticeSent,
    PresenceChanged,
    ReadMarked,
    RoomUpdated,
    SessionsRevoked,
    TicketChanged,
    TypingChanged,
)
from ..services import Services
from ..wire import room_wire
from . import ADMINS_CHANNEL, EXPERTS_CHANNEL, room_channel, staff_channel, user_channel

log = logging.getLogger("chatserver.broadcaster")
_NAMESPACE = "/"


class Broadcaster:
    def __init__(self, sio: socketio.AsyncServer, services: Services) -> None:
        self._sio = sio
        self._services = services
        self._positions: dict[str, int] = {}  # queue place last told to each waiting session's client

    async def __call__(self, event: Event) -> None:
        sio = self._sio
        match event:
            case (
                MessageSent(message=m, sender=s)
                | MessageEdited(message=m, sender=s)
                | MessageDeleted(message=m, sender=s)
            ):
                name = {MessageSent: "message", MessageEdited: "message_edited", MessageDeleted: "message_deleted"}[
                    type(event)
                ]
                channel = staff_channel(m.room_id) if m.internal else room_channel(m.room_id)
                await sio.emit(name, m.to_wire(s), to=channel)
            case NoticeSent(user_id=user_id):
                await sio.emit("notice", event.to_wire(), to=user_channel(user_id))
            case ReadMarked(room_id=room_id, user_id=user_id, seq=seq):
                await sio.emit("read", {"room_id": room_id, "user_id": user_id, "seq": seq}, to=room_channel(room_id))
            case TypingChanged(room_id=room_id, user=user, typing=typing):
                await sio.emit(
                    "typing", {"room_id": room_id, "user": user.public(), "typing": typing}, to=room_channel(room_id)
                )
            case PresenceChanged(user_id=user_id, online=online, room_ids=room_ids):
                if room_ids:
                    await sio.emit(
                        "presence", {"user_id": user_id, "online": online}, to=[room_channel(r) for r in room_ids]
                    )
            case MemberAdded(room_id=room_id, user_id=user_id):
                await self._member_added(room_id, user_id)
            case MemberRemoved(room_id=room_id, user_id=user_id):
                for sid in self._services.presence.sids(user_id):
                    await sio.leave_room(sid, room_channel(room_id), namespace=_NAMESPACE)
                    await sio.leave_room(sid, staff_channel(room_id), namespace=_NAMESPACE)
                await sio.emit("room_removed", {"room_id": room_id}, to=user_channel(user_id))
            case RoomUpdated(room_id=room_id):
                room = await self._services.store.get_room(room_id)
                if room is not None:
                    project = None
                    if room.project_id:
                        project = (await self._services.store.get_projects([room.project_id])).get(room.project_id)
                    await sio.emit("room_updated", room_wire(room, project), to=room_channel(room_id))
                    if project is not None:  # admins' boards show every project, with its staffing gaps
                        await sio.emit("project_updated", project.to_wire(admin_view=True), to=ADMINS_CHANNEL)
            case ExpertSessionChanged(session=session):
                if session.status != "queued":
                    self._positions.pop(session.room_id, None)
                view = await experts.session_view(self._services, session)
                people = {session.client_id, session.requested_by, session.expert_id} - {None}
                await sio.emit("expert_session", view, to=[user_channel(uid) for uid in people if uid])
            case ExpertQueueChanged(product=product, room_ids=room_ids):
                await self._queue_changed(product, room_ids)
            case TicketChanged(ticket=ticket):
                view = (await tickets.tickets_wire(self._services, [ticket]))[0]
                channel = staff_channel(ticket.room_id) if ticket.internal else room_channel(ticket.room_id)
                await sio.emit("ticket_updated", view, to=channel)
            case SessionsRevoked(user_id=user_id):
                for sid in self._services.presence.sids(user_id):
                    await sio.disconnect(sid, namespace=_NAMESPACE)
            case _:
                pass

    async def _queue_changed(self, product: str, room_ids: tuple[str, ...]) -> None:
        store = self._services.store
        sessions = [s for s in [await store.get_expert_session(r) for r in room_ids] if s is not None]
        clients = await store.get_users([s.client_id for s in sessions])
        queue = []
        for position, session in enumerate(sessions, start=1):
            if self._positions.get(session.room_id) != position:  # only news: a place that changed
                self._positions[session.room_id] = position
                await self._sio.emit(
                    "queue_position",
                    {"room_id": session.room_id, "product": product, "position": position},
                    to=user_channel(session.client_id),
                )
            if session.client_id in clients:
                queue.append({**session.to_wire(), "client": clients[session.client_id].public(), "position": position})
        await self._sio.emit("expert_queue", {"product": product, "queue": queue}, to=EXPERTS_CHANNEL)

    async def _member_added(self, room_id: str, user_id: str) -> None:
        sids = self._services.presence.sids(user_id)
        if not sids:
            return
        user = await self._services.store.get_user(user_id)
        if user is None:
            return
        for sid in sids:
            await self._sio.enter_room(sid, room_channel(room_id), namespace=_NAMESPACE)
            if user.is_staff:
                await self._sio.enter_room(sid, staff_channel(room_id), namespace=_NAMESPACE)
        view = await rooms.get_room_view(self._services, user, room_id)
        if view is not None:
            await self._sio.emit("room_added", view, to=user_channel(user_id))
