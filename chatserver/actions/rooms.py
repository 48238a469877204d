"""Projects, rooms and their members."""

from __future__ import annotations

from typing import Any

from ..events import MemberAdded, MemberRemoved, RoomCreated
from ..models import Membership, Project, Room, RoomKind, Stage, new_id
from ..models import User as UserModel
from ..services import Services
from ..wire import summaries_wire
from ._checks import require_member


async def create_project(
    services: Services, *, external_id: str, name: str, client_org: str, products: list[str], stage: Stage
) -> Project:
    project = Project(
        id=new_id("p"), external_id=external_id, name=name, client_org=client_org, products=products, stage=stage
    )
    return await services.store.create_project(project)


async def create_room(
    services: Services,
    *,
    kind: RoomKind,
    title: str,
    project_id: str | None = None,
    members: list[tuple[str, str]] = (),  # type: ignore[assignment]
) -> Room:
    """Create a room with its first members, given as (user_id, role in the room)."""
    room = await services.store.create_room(Room(id=new_id("r"), kind=kind, title=title, project_id=project_id))
    await services.bus.publish(RoomCreated(room_id=room.id))
    for user_id, role in members:
        await add_member(services, room_id=room.id, user_id=user_id, role=role)
    return room


async def add_member(services: Services, *, room_id: str, user_id: str, role: str) -> bool:
    added = await services.store.add_member(Membership(room_id=room_id, user_id=user_id, role=role))
    if added:
        await services.bus.publish(MemberAdded(room_id=room_id, user_id=user_id, role=role))
    return added


async def remove_member(services: Services, *, room_id: str, user_id: str) -> bool:
    removed = await services.store.remove_member(room_id, user_id)
    if removed:
        await services.bus.publish(MemberRemoved(room_id=room_id, user_id=user_id))
    return removed


async def list_rooms(services: Services, user: UserModel) -> list[dict[str, Any]]:
    summaries = await services.store.room_summaries(user.id, include_internal=user.is_staff)
    return await summaries_wire(services.store, summaries)


async def get_room_view(services: Services, user: UserModel, room_id: str) -> dict[str, Any] | None:
    """One room as `list_rooms` shows it to this user, or None if they are not in it."""
    for room in await list_rooms(services, user):
        if room["id"] == room_id:
            return room
    return None


async def get_members(services: Services, user: UserModel, *, room_id: str) -> list[dict[str, Any]]:
    await require_member(services, user, room_id)
    memberships = await services.store.list_members(room_id)
    users = await services.store.get_users([m.user_id for m in memberships])
    return [
        {"user": users[m.user_id].public(), "role": m.role, "online": services.presence.is_online(m.user_id)}
        for m in memberships
        if m.user_id in users
    ]
