"""Socket.IO: the namespace that handles client events, the broadcaster that turns events into emits."""

from __future__ import annotations


def room_channel(room_id: str) -> str:
    """Every member's sockets."""
    return f"room:{room_id}"


def staff_channel(room_id: str) -> str:
    """Bank staff members' sockets only: internal notes go here."""
    return f"staff:{room_id}"


def user_channel(user_id: str) -> str:
    return f"user:{user_id}"


EXPERTS_CHANNEL = "experts"  # sockets of staff who take expert sessions: they hear of the queues
ADMINS_CHANNEL = "admins"  # admins' sockets: they see every project on the board, in its room or not
