"""The audit log: who did what, when, with what outcome. Written by the other actions, read by admins."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..errors import Forbidden
from ..models import AuditEntry, User, new_id, utcnow
from ..services import Services


async def record(
    services: Services,
    action: str,
    *,
    actor_id: str | None,
    outcome: str = "success",
    room_id: str | None = None,
    target_id: str | None = None,
    **detail: Any,
) -> None:
    await services.store.append_audit(
        AuditEntry(
            id=new_id("a"),
            at=utcnow(),
            actor_id=actor_id,
            action=action,
            outcome=outcome,
            room_id=room_id,
            target_id=target_id,
            detail=detail,
        )
    )


async def list_audit(
    services: Services,
    actor: User,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    actor_id: str | None = None,
    room_id: str | None = None,
    limit: int = 100,
) -> list[AuditEntry]:
    if not actor.is_admin:
        raise Forbidden("only an admin can read the audit log")
    return await services.store.list_audit(since=since, until=until, actor_id=actor_id, room_id=room_id, limit=limit)
