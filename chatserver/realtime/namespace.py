"""The Socket.IO namespace: thin handlers that parse, authorize, call one action, and shape the ack."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import socketio

from ..actions import accounts, experts, messages, presence, projects, rooms
from ..auth import VerifiedToken
from ..errors import ChatError, Unauthorized, Unavailable, internal_error_dict
from ..models import User
from ..schemas import (
    CloseSession,
    DeleteMessage,
    EditMessage,
    GetExpertConsole,
    GetExpertSession,
    GetHistory,
    GetMembers,
    ListProjects,
    ListRooms,
    MarkRead,
    RateSession,
    RequestExpert,
    SendMessage,
    SetTyping,
    TransferSession,
    parse,
)
from ..services import Services
from . import ADMINS_CHANNEL, EXPERTS_CHANNEL, room_channel, staff_channel, user_channel

log = logging.getLogger("chatserver.realtime")
Ack = dict[str, Any]
Handler = Callable[[User, Any], Awaitable[Ack]]


def _refused(error: ChatError) -> socketio.exceptions.ConnectionRefusedError:
    """A refusal whose CONNECT_ERROR packet is `{message, data: {code, message}}`: the Socket.IO client's
    `connect_error` then gets `err.message` and `err.data = {code, message}` (a single dict argument would be
    flattened into a string by python-socketio)."""
    return socketio.exceptions.ConnectionRefusedError(error.message, {"code": error.code, "message": error.message})


class ChatNamespace(socketio.AsyncNamespace):  # type: ignore[misc]
    def __init__(self, services: Services) -> None:
        super().__init__("/")
        self.services = services
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._expiry: dict[str, asyncio.TimerHandle] = {}
        self._closing: set[asyncio.Task[None]] = set()
        # The users signed in on this process's sockets, each with the store's `users_version` it was read at: an
        # event re-reads its user only after a user was changed (in this process: at once; elsewhere: the session
        # check, every `session_check_seconds`, reads them all again). Dropped with the user's last socket.
        self._users: dict[str, tuple[int, User]] = {}

    def _disconnect_soon(self, sid: str) -> None:
        task = asyncio.get_running_loop().create_task(self.disconnect(sid))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _user(self, verified: VerifiedToken, *, fresh: bool = False) -> User:
        """The token's user, checked now (expired, revoked, disabled: Unauthorized); read from the store only when
        a user changed since it was last read, or when `fresh` (a connect: a new socket sees the store as it is)."""
        store = self.services.store
        cached = self._users.get(verified.user_id)
        if not fresh and cached is not None and cached[0] == store.users_version:
            return accounts.check_token_user(verified, cached[1])
        version = store.users_version  # before the read: a change made while it runs is not kept
        user = await accounts.token_user(self.services, verified)
        self._users[user.id] = (version, user)
        return user

    # connection ----------------------------------------------------------------------------------
    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        services = self.services
        if services.draining:
            raise _refused(Unavailable("the server is restarting"))
        token = auth.get("token") if isinstance(auth, dict) else None
        try:
            verified = services.tokens.verify(token)
            user = await self._user(verified, fresh=True)
        except Unauthorized as exc:
            services.metrics.errors.labels(code=exc.code).inc()
            raise _refused(exc) from None
        await self.save_session(sid, {"token": verified})
        # The socket ends when its token does, whether or not it sends anything.
        delay = max(0.0, verified.expires_at - time.time())
        self._expiry[sid] = asyncio.get_running_loop().call_later(delay, self._disconnect_soon, sid)
        await self.enter_room(sid, user_channel(user.id))
        if experts.is_expert(user):
            await self.enter_room(sid, EXPERTS_CHANNEL)
        if user.is_admin:
            await self.enter_room(sid, ADMINS_CHANNEL)
        for membership in await services.store.list_memberships(user.id):
            await self.enter_room(sid, room_channel(membership.room_id))
            if user.is_staff:
                await self.enter_room(sid, staff_channel(membership.room_id))
        services.metrics.connections.inc()
        services.metrics.connections_open.inc()
        await presence.user_connected(services, user, sid)
        log.info("connected", extra={"user_id": user.id, "sid": sid})

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        timer = self._expiry.pop(sid, None)
        if timer is not None:
            timer.cancel()
        session = await self.get_session(sid)
        verified = session.get("token")
        if verified is not None:
            user_id = verified.user_id
            self.services.metrics.connections_open.dec()
            if self.services.draining:  # shutting down: every socket goes; nobody is left to hear of it
                self.services.presence.disconnect(user_id, sid)
            else:
                await presence.user_disconnected(self.services, user_id, sid)
            if not self.services.presence.sids(user_id):
                self._users.pop(user_id, None)
            log.info("disconnected", extra={"user_id": user_id, "sid": sid})

    # events --------------------------------------------------------------------------------------
    async def _handle(self, sid: str, payload: Any, handler: Handler, *, write: bool = False) -> Ack:
        """Run one event: the user from the session, limits, the handler; every failure as an error ack."""
        services = self.services
        self._in_flight += 1
        self._idle.clear()
        try:
            if services.draining:
                raise Unavailable("the server is restarting; retry shortly")
            session = await self.get_session(sid)
            verified = session.get("token")
            if verified is None:
                raise Unauthorized("not signed in")
            try:
                user = await self._user(verified)
            except Unauthorized:
                self._disconnect_soon(sid)  # after this ack, so the client learns why
                raise
            services.event_limiter.check(user.id)
            if write:
                services.send_limiter.check(user.id)
            return await handler(user, payload)
        except ChatError as exc:
            services.metrics.errors.labels(code=exc.code).inc()
            return exc.to_dict()
        except Exception:
            services.metrics.errors.labels(code="internal_error").inc()
            log.exception("event failed", extra={"sid": sid})
            return internal_error_dict()
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()

    async def watch_sessions(self, interval: float) -> None:
        """Find changes made by another process (the CLI, another server), which published no event this process
        could hear: every second, ask the store whether anyone else wrote (one cheap query); if so — or every
        `interval` seconds in any case — refresh the signed-in users and close the sockets whose user was
        disabled or whose token was revoked. The store's change counters drop every cached copy meanwhile."""
        tick = min(interval, 1.0)
        waited = 0.0
        while True:
            await asyncio.sleep(tick)
            waited += tick
            try:
                elsewhere = await self.services.store.changed_elsewhere()
                if elsewhere or waited >= interval:
                    waited = 0.0
                    await self._close_revoked()
            except Exception:
                log.exception("session check failed")

    async def _close_revoked(self) -> None:
        presence = self.services.presence
        version = self.services.store.users_version
        users = await self.services.store.get_users(presence.user_ids())
        for user_id in presence.user_ids():
            user = users.get(user_id)
            if user is not None and user_id in self._users:  # changes made elsewhere (a rename) show from now on
                self._users[user_id] = (version, user)
            for sid in presence.sids(user_id):
                verified = (await self.get_session(sid)).get("token")
                revoked = (
                    user is not None
                    and user.tokens_after is not None
                    and verified is not None
                    and (verified.issued_at < user.tokens_after.timestamp())
                )
                if user is None or not user.active or revoked:
                    self._disconnect_soon(sid)

    async def drain(self, timeout: float) -> None:
        """Wait until no event is being handled (used at shutdown, after `draining` is set)."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            log.warning("shutdown: events still running after grace period", extra={"in_flight": self._in_flight})

    async def on_send_message(self, sid: str, payload: Any = None) -> Ack:
        async def handle(user: User, raw: Any) -> Ack:
            p = parse(SendMessage, raw)
            message, _ = await messages.send_message(
                self.services,
                user,
                room_id=p.room_id,
                text=p.text,
                client_msg_id=p.client_msg_id,
                reply_to=p.reply_to,
                internal=p.internal,
            )
            return {"ok": True, "message": message.to_wire(user)}

        return await self._handle(sid, payload, handle, write=True)

    async def on_get_history(self, sid: str, payload: Any = None) -> Ack:
        async def handle(user: User, raw: Any) -> Ack:
            p = parse(GetHistory, raw)
            page, has_more = await messages.get_history(
                self.services, user, room_id=p.room_id, before_seq=p.before_seq, after_seq=p.after_seq, limit=p.limit
            )
            return {"ok": True, "messages": page, "has_more": has_more}

        return await self._handle(sid, payload, handle)

    async def on_mark_read(self, sid: str, payload: Any = None) -> Ack:
        async def handle(user: User, raw: Any) -> Ack:
            p = parse(MarkRead, raw)
            marker = await messages.mark_read(self.services, user, room_id=p.room_id, seq=p.seq)
            return {"ok": True, "room_id": p.room_id, "last_read_seq": marker}

        return await self._handle(sid, payload, handle)

    async def on_set_typing(self, sid: str, payload: Any = None) -> Ack:
        async def handle(user: User, raw: Any) -> Ack:
            p = parse(SetTyping, raw)
            await presence.set_typing(self.services, user, room_id=p.room_id, typing=p.typing)
            return {"ok": True}

        return await self._handle(sid, payload, handle)

    async def on_edit_message(self, sid: str, payload: Any = None) -> Ack:
        async def handle(user: User, raw: Any) -> Ack:
            p = parse(EditMessage, raw)
            message, sender = await messages.edit_message(self.services, user, message_id=p.message_id, text=p.text)
            return {"ok": True, "message": message.to_wire(sender)}

        return await self._handle(sid, payload, handle, write=True)

    async def on_delete_message(self, sid: str, payload: Any = None) -> Ack:
        async def handle(user: User, raw: Any) -> Ack:
            p = parse(DeleteMessage, raw)
            message, sender = await messages.delete_message(self.services, user, message_id=p.message_id)
            return {"ok": True, "message": message.to_wire(sender)}

        return await self._handle(sid, payload, handle, write=True)

    async def on_list_rooms(self, sid: str, payload: Any = None) -> Ack:
        async def handle(user: User, raw: Any) -> Ack:
            parse(ListRooms, raw)
            return {"ok": True, "rooms": await rooms.list_rooms(self.services, user)}

        return await self._handle(sid, payload, handle)

    async def on_get_members(self, sid: str, payload: Any = None) -> Ack:
        async def handle(user: User, raw: Any) -> Ack:
            p = parse(GetMembers, raw)
            return {"ok": True, "members": await rooms.get_members(self.services, user, room_id=p.room_id)}

        return await self._handle(sid, payload, handle)

    async def on_list_projects(self, sid: str, payload: Any = None) -> Ack:
        async def handle(user: User, raw: Any) -> Ack:
            parse(ListProjects, raw)
            return {"ok": True, "projects": await projects.list_projects(self.services, user)}

        return await self._handle(sid, payload, handle)

    async def on_request_expert(self, sid: str, payload: Any = None) -> Ack:
        async def handle(user: User, raw: Any) -> Ack:
            p = parse(RequestExpert, raw)
            session = await experts.request_expert(
                self.services, user, product=p.product, text=p.text, for_client_id=p.for_client_id
            )
            return {"ok": True, "session": session}

        return await self._handle(sid, payload, handle, write=True)

    async def on_get_expert_session(self, sid: str, payload: Any = None) -> Ack:
        async def handle(user: User, raw: Any) -> Ack:
            p = parse(GetExpertSession, raw)
            return {"ok": True, "session": await experts.get_session(self.services, user, room_id=p.room_id)}

        return await self._handle(sid, payload, handle)

    async def on_transfer_session(self, sid: str, payload: Any = None) -> Ack:
        async def handle(user: User, raw: Any) -> Ack:
            p = parse(TransferSession, raw)
            session = await experts.transfer_session(
                self.services, user, room_id=p.room_id, to_user_id=p.to_user_id, product=p.product, note=p.note
            )
            return {"ok": True, "session": session}

        return await self._handle(sid, payload, handle, write=True)

    async def on_close_session(self, sid: str, payload: Any = None) -> Ack:
        async def handle(user: User, raw: Any) -> Ack:
            p = parse(CloseSession, raw)
            return {"ok": True, "session": await experts.close_session(self.services, user, room_id=p.room_id)}

        return await self._handle(sid, payload, handle, write=True)

    async def on_rate_session(self, sid: str, payload: Any = None) -> Ack:
        async def handle(user: User, raw: Any) -> Ack:
            p = parse(RateSession, raw)
            session = await experts.rate_session(
                self.services, user, room_id=p.room_id, rating=p.rating, comment=p.comment
            )
            return {"ok": True, "session": session}

        return await self._handle(sid, payload, handle, write=True)

    async def on_get_expert_console(self, sid: str, payload: Any = None) -> Ack:
        async def handle(user: User, raw: Any) -> Ack:
            parse(GetExpertConsole, raw)
            return {"ok": True, **await experts.get_console(self.services, user)}

        return await self._handle(sid, payload, handle)

    async def trigger_event(self, event: Any, *args: Any) -> Any:
        """Unknown, malformed or reserved event names get an error ack rather than silence.

        `connect` and `disconnect` run only when the server itself fires them (the socket is then
        still connecting or already leaving); a connected client sending an event of that name must
        not re-run sign-in or sign itself out."""
        if event in ("connect", "disconnect"):
            if not self.server.manager.is_connected(args[0] if args else None, self.namespace):
                return await super().trigger_event(event, *args)
        elif isinstance(event, str) and hasattr(self, f"on_{event}"):
            if len(args) > 2:
                return {"ok": False, "error": {"code": "invalid_payload", "message": "send one payload object"}}
            return await super().trigger_event(event, *args)
        log.info("unknown event", extra={"sid": args[0] if args else "?"})
        name = repr(event[:64]) if isinstance(event, str) else "names must be strings"
        return {"ok": False, "error": {"code": "invalid_payload", "message": f"unknown event {name}"}}
