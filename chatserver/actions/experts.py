"""The expert desk: a client asks for a product expert and gets the least-busy one online, or a place in line.

Assignment is atomic in the store (`assign_expert_session`), and one dispatcher runs at a time in this
process (`services.expert_desk_lock`), so an expert never exceeds their session limit, a request never gets
two experts, and the queue for a product is served first come, first served.
"""

from __future__ import annotations

from typing import Any

from ..errors import Forbidden, InvalidPayload, NotFound
from ..events import ExpertQueueChanged, ExpertSessionChanged
from ..models import ExpertSession, User, new_id, utcnow
from ..services import Services
from ..text import unsafe_character
from . import audit, messages, rooms
from ._checks import check_text

EXPERT_ROLE = "solution_expert"
SESSION_NOT_FOUND = "expert session not found"


def is_expert(user: User, product: str | None = None) -> bool:
    return (
        user.active
        and user.is_staff
        and EXPERT_ROLE in user.roles
        and user.max_sessions > 0
        and (product is None or product in user.skills)
    )


async def request_expert(
    services: Services, user: User, *, product: str, text: str, for_client_id: str | None = None
) -> dict[str, Any]:
    """Open (or return the open) expert session of a client for a product, and try to assign an expert."""
    if product not in services.settings.products:
        raise InvalidPayload(f"product: not one of {', '.join(services.settings.products)}")
    text = check_text(services, text)
    client = await _client_for(services, user, for_client_id)
    # Under the desk's lock: two requests of one client at once (two tabs) must not open two sessions, and
    # the question is in the room before any dispatcher can see the session and bring an expert in.
    async with services.expert_desk_lock:
        for open_session in await services.store.list_expert_sessions(client_id=client.id, product=product):
            if open_session.status != "closed":  # one open session per client and product; asking again finds it
                if user.id != client.id:  # staff asking for the client join it, as when they opened it
                    await rooms.add_member(
                        services, room_id=open_session.room_id, user_id=user.id, role="requester", actor_id=user.id
                    )
                # ...and the new question goes into it
                await messages.send_message(
                    services, user, room_id=open_session.room_id, text=text, client_msg_id=new_id("ask")
                )
                return await session_view(services, open_session)

        room = await rooms.create_room(
            services, kind="expert", title=f"{product} 专家咨询 · {client.name}", members=[(client.id, "client")]
        )
        if user.id != client.id:
            await rooms.add_member(services, room_id=room.id, user_id=user.id, role="requester", actor_id=user.id)
        await messages.send_message(services, user, room_id=room.id, text=text, client_msg_id=f"request:{room.id}")
        session = await services.store.create_expert_session(
            ExpertSession(
                room_id=room.id,
                client_id=client.id,
                product=product,
                status="queued",
                requested_at=utcnow(),
                requested_by=user.id,
            )
        )
    await audit.record(services, "expert_requested", actor_id=user.id, room_id=room.id, product=product)
    await services.bus.publish(ExpertSessionChanged(session=session))
    await dispatch(services, product)
    current = await services.store.get_expert_session(room.id)
    assert current is not None
    return await session_view(services, current)


async def _client_for(services: Services, user: User, for_client_id: str | None) -> User:
    if user.kind == "client":
        if for_client_id is not None and for_client_id != user.id:
            raise Forbidden("a client can only ask for themselves")
        return user
    if not user.is_staff:
        raise Forbidden("only clients, or bank staff acting for one, can ask for an expert")
    if for_client_id is None:
        raise InvalidPayload("for_client_id: bank staff must name the client they are asking for")
    client = await services.store.get_user(for_client_id)
    if client is None or client.kind != "client" or not client.active:
        raise NotFound("client not found")
    if not user.is_admin:  # staff act only for clients they serve: people they share a room with
        theirs = {m.room_id for m in await services.store.list_memberships(client.id)}
        if not theirs & {m.room_id for m in await services.store.list_memberships(user.id)}:
            raise NotFound("client not found")
    return client


async def dispatch(services: Services, product: str, *, handed_back: tuple[str, str] | None = None) -> None:
    """Serve the product's queue in order while online experts have room; then tell everyone waiting their place.

    `handed_back` is (room id, expert id) of a session its expert just handed back to the queue: it does not go
    straight back to them, and while it waits for someone else it does not hold up the sessions behind it."""
    async with services.expert_desk_lock:
        queued = await services.store.list_expert_sessions(status="queued", product=product)
        experts = [u for u in await services.store.list_users() if is_expert(u, product)]
        online = [u.id for u in experts if services.presence.is_online(u.id)]
        waiting: list[str] = []
        blocked = False  # first come, first served: once one waits for want of a slot, everyone behind waits
        for session in queued:
            is_handed_back = handed_back is not None and session.room_id == handed_back[0]
            candidates = [e for e in online if handed_back is None or e != handed_back[1]] if is_handed_back else online
            expert_id = (
                None if blocked else await services.store.assign_expert_session(session.room_id, candidates, utcnow())
            )
            if expert_id is None:
                blocked = blocked or not is_handed_back
                waiting.append(session.room_id)
                continue
            await _expert_joined(services, session.room_id, expert_id)
        await services.bus.publish(ExpertQueueChanged(product=product, room_ids=tuple(waiting)))


async def _expert_joined(services: Services, room_id: str, expert_id: str) -> None:
    expert = await services.store.get_user(expert_id)
    assert expert is not None
    await rooms.add_member(services, room_id=room_id, user_id=expert_id, role="expert")
    await rooms.post_system_message(services, room_id, f"专家 {expert.name}（{expert.org}）已接入，请直接提问。")
    session = await services.store.get_expert_session(room_id)
    assert session is not None
    await audit.record(services, "expert_assigned", actor_id=None, room_id=room_id, target_id=expert_id)
    await services.bus.publish(ExpertSessionChanged(session=session))


async def dispatch_for_expert(services: Services, user: User) -> None:
    """An expert came online or got room: serve the queues they can help with."""
    if is_expert(user):
        for product in user.skills:
            await dispatch(services, product)


async def requeue_sessions_of(services: Services, expert: User) -> None:
    """An expert was disabled: their open sessions go back to the front of their queues, to be served again."""
    for session in await services.store.list_expert_sessions(expert_id=expert.id, status="active"):
        requeued = await services.store.update_expert_session(
            session.room_id, expected_status="active", status="queued", clear_expert=True
        )
        if requeued is None:
            continue
        await rooms.remove_member(services, room_id=session.room_id, user_id=expert.id)
        await rooms.post_system_message(services, session.room_id, "原专家已离开，会话已转入专家队列，请稍候。")
        await audit.record(
            services, "expert_transferred", actor_id=None, room_id=session.room_id, product=session.product
        )
        await services.bus.publish(ExpertSessionChanged(session=requeued))
        await dispatch(services, session.product)


async def _active_session_of(services: Services, user: User, room_id: str) -> ExpertSession:
    session = await services.store.get_expert_session(room_id)
    membership = await services.store.get_membership(room_id, user.id)
    if session is None or (membership is None and not user.is_admin):
        raise NotFound(SESSION_NOT_FOUND)
    if session.expert_id != user.id and not user.is_admin:
        raise Forbidden("only the session's expert can do this")
    if session.status != "active":
        raise Forbidden(f"the session is {session.status}")
    return session


async def transfer_session(
    services: Services,
    user: User,
    *,
    room_id: str,
    to_user_id: str | None = None,
    product: str | None = None,
    note: str = "",
) -> dict[str, Any]:
    """Hand a session to another expert, or back to the queue of a (possibly other) product.

    The note goes into the room as an internal note: the next expert reads it, the client never does."""
    if (to_user_id is None) == (product is None):
        raise InvalidPayload("give either to_user_id or product")
    if note.strip():  # checked before anything moves: a refused note must leave the session as it was
        note = check_text(services, note, what="note")
    if product is not None and product not in services.settings.products:
        raise InvalidPayload(f"product: not one of {', '.join(services.settings.products)}")
    session = await _active_session_of(services, user, room_id)
    target: User | None = None
    if to_user_id is not None:
        target = await services.store.get_user(to_user_id)
        if target is None or not is_expert(target, session.product) or target.id == session.expert_id:
            raise InvalidPayload("to_user_id: not another expert for this product")
        if not services.presence.is_online(target.id):
            raise Forbidden(f"{target.name} is not online; transfer to the product queue instead")
    old_expert_id = session.expert_id
    # An admin may transfer a session without being in its room: their note is then posted for them.
    in_room = await services.store.get_membership(room_id, user.id) is not None
    async with services.expert_desk_lock:
        requeued = await services.store.update_expert_session(
            room_id, expected_status="active", status="queued", product=product, clear_expert=True
        )
        if requeued is None:
            raise Forbidden("the session changed meanwhile; reload it")
        if target is not None:
            if await services.store.assign_expert_session(room_id, [target.id], utcnow()) is None:
                restored = await services.store.update_expert_session(
                    room_id, expected_status="queued", status="active", expert_id=old_expert_id
                )
                assert restored is not None
                raise Forbidden(f"{target.name} has no free session slot")
    if note.strip() and in_room:
        await messages.send_message(
            services,
            user,
            room_id=room_id,
            text=f"转接备注：{note}",
            client_msg_id=f"transfer:{utcnow().timestamp()}",
            internal=True,
        )
    elif note.strip():
        await rooms.post_system_message(services, room_id, f"转接备注（{user.name}）：{note}", internal=True)
    if old_expert_id:
        await rooms.remove_member(services, room_id=room_id, user_id=old_expert_id, actor_id=user.id)
    await audit.record(
        services,
        "expert_transferred",
        actor_id=user.id,
        room_id=room_id,
        target_id=to_user_id,
        product=product or session.product,
    )
    if target is not None:
        await _expert_joined(services, room_id, target.id)
        await dispatch(services, session.product)  # the old expert has a free slot now
    else:
        await rooms.post_system_message(services, room_id, "会话已转入专家队列，请稍候。")
        current = await services.store.get_expert_session(room_id)
        assert current is not None
        await services.bus.publish(ExpertSessionChanged(session=current))
        # Handed back to a queue: not straight back to the expert who handed it back.
        handed_back = (room_id, old_expert_id) if old_expert_id else None
        await dispatch(services, current.product, handed_back=handed_back)
        if current.product != session.product:
            await dispatch(services, session.product)  # the old expert has a free slot now
    current = await services.store.get_expert_session(room_id)
    assert current is not None
    return await session_view(services, current)


async def close_session(services: Services, user: User, *, room_id: str) -> dict[str, Any]:
    session = await _active_session_of(services, user, room_id)
    closed = await services.store.update_expert_session(
        room_id, expected_status="active", status="closed", closed_at=utcnow()
    )
    if closed is None:
        raise Forbidden("the session changed meanwhile; reload it")
    await rooms.post_system_message(services, room_id, "本次专家会话已结束，欢迎为本次服务评分（1–5 分）。")
    await rooms.set_read_only(services, room_id, True)
    await audit.record(services, "expert_session_closed", actor_id=user.id, room_id=room_id)
    await services.bus.publish(ExpertSessionChanged(session=closed))
    await dispatch(services, session.product)
    return await session_view(services, closed)


async def rate_session(
    services: Services, user: User, *, room_id: str, rating: int, comment: str | None = None
) -> dict[str, Any]:
    session = await services.store.get_expert_session(room_id)
    if session is None or session.client_id != user.id:
        raise NotFound(SESSION_NOT_FOUND)
    if session.status != "closed":
        raise Forbidden("a session can be rated once it is closed")
    problem = unsafe_character(comment or "", multiline=True)
    if problem:
        raise InvalidPayload(f"comment: {problem}")
    if not await services.store.rate_expert_session(room_id, user.id, rating, (comment or "").strip() or None):
        raise Forbidden("this session has been rated already")
    await audit.record(services, "expert_session_rated", actor_id=user.id, room_id=room_id, rating=rating)
    rated = await services.store.get_expert_session(room_id)
    assert rated is not None
    return await session_view(services, rated)


async def get_session(services: Services, user: User, *, room_id: str) -> dict[str, Any]:
    session = await services.store.get_expert_session(room_id)
    if session is None or (await services.store.get_membership(room_id, user.id) is None and not user.is_admin):
        raise NotFound(SESSION_NOT_FOUND)
    return await session_view(services, session)


async def session_view(services: Services, session: ExpertSession) -> dict[str, Any]:
    """A session as its client and expert see it: the expert's public card and the place in line."""
    view = session.to_wire()
    expert = await services.store.get_user(session.expert_id) if session.expert_id else None
    view["expert"] = expert.public() if expert else None
    view["position"] = await queue_position(services, session) if session.status == "queued" else None
    return view


async def queue_position(services: Services, session: ExpertSession) -> int:
    queued = await services.store.list_expert_sessions(status="queued", product=session.product)
    ids = [s.room_id for s in queued]
    return ids.index(session.room_id) + 1 if session.room_id in ids else 0


async def get_console(services: Services, user: User) -> dict[str, Any]:
    """What an expert's console shows: their open sessions, and who waits for each product."""
    if not user.is_staff:
        raise Forbidden("the expert console is for bank staff")
    mine = [s for s in await services.store.list_expert_sessions(expert_id=user.id) if s.status == "active"]
    queue: dict[str, list[dict[str, Any]]] = {}
    for product in services.settings.products:
        waiting = await services.store.list_expert_sessions(status="queued", product=product)
        clients = await services.store.get_users([s.client_id for s in waiting])
        queue[product] = [
            {**s.to_wire(), "client": clients[s.client_id].public(), "position": n}
            for n, s in enumerate(waiting, start=1)
            if s.client_id in clients
        ]
    clients = await services.store.get_users([s.client_id for s in mine])
    experts = [u.public() | {"skills": u.skills} for u in await services.store.list_users() if is_expert(u)]
    return {
        "sessions": [{**s.to_wire(), "client": clients[s.client_id].public()} for s in mine if s.client_id in clients],
        "queue": queue,
        "experts": experts,
        "products": list(services.settings.products),
    }
