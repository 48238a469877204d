"""Who is online and who is typing: nothing stored, only published."""

from __future__ import annotations

from ..events import PresenceChanged, TypingChanged
from ..models import User
from ..services import Services
from . import experts
from ._checks import require_member, require_writable


async def set_typing(services: Services, user: User, *, room_id: str, typing: bool) -> None:
    room, _ = await require_member(services, user, room_id)
    require_writable(room)
    await services.bus.publish(TypingChanged(room_id=room_id, user=user, typing=typing))


async def user_connected(services: Services, user: User, sid: str) -> None:
    if services.presence.connect(user.id, sid):
        await _publish_presence(services, user.id, online=True)
        await experts.dispatch_for_expert(services, user)  # an expert coming online serves the queue


async def user_disconnected(services: Services, user_id: str, sid: str) -> None:
    if services.presence.disconnect(user_id, sid):
        await _publish_presence(services, user_id, online=False)


async def _publish_presence(services: Services, user_id: str, *, online: bool) -> None:
    room_ids = tuple(m.room_id for m in await services.store.list_memberships(user_id))
    await services.bus.publish(PresenceChanged(user_id=user_id, online=online, room_ids=room_ids))
