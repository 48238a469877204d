"""The built-in ticket system: the server's own store keeps the tickets, so there is nobody else to tell."""

from __future__ import annotations

from .base import TicketDraft


class BuiltinTicketSystem:
    mode = "builtin"

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def create(self, draft: TicketDraft) -> str | None:
        return None  # the ticket's number is its key

    async def update_status(self, external_key: str | None, status: str) -> int | None:
        return None
