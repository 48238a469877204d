"""Shaping records for the wire (docs/protocol.md), with the batch look-ups that needs."""

from __future__ import annotations

from typing import Any

from .models import Message, Project, Room, RoomSummary, User
from .storage import Store

_UNKNOWN = User(id="", username="", name="(unknown)", org="", kind="staff")


async def messages_wire(store: Store, messages: list[Message]) -> list[dict[str, Any]]:
    senders = await store.get_users([m.sender_id for m in messages])
    return [m.to_wire(senders.get(m.sender_id, _UNKNOWN)) for m in messages]


def room_wire(room: Room, project: Project | None) -> dict[str, Any]:
    """The part of a room every member sees alike (`room_updated`)."""
    return {
        "id": room.id,
        "kind": room.kind,
        "title": room.title,
        "project": project.to_wire() if project else None,
        "read_only": room.read_only,
    }


async def summaries_wire(store: Store, summaries: list[RoomSummary]) -> list[dict[str, Any]]:
    projects = await store.get_projects([s.room.project_id for s in summaries if s.room.project_id])
    last = await messages_wire(store, [s.last_message for s in summaries if s.last_message])
    last_by_room = {m["room_id"]: m for m in last}
    return [
        {
            **room_wire(s.room, projects.get(s.room.project_id or "")),
            # The last seq this user can see: internal notes are not counted for clients.
            "last_seq": s.last_message.seq if s.last_message else 0,
            "my_role": s.membership.role,
            "last_read_seq": s.membership.last_read_seq,
            "unread": s.unread,
            "last_message": last_by_room.get(s.room.id),
        }
        for s in summaries
    ]
