"""The ticket system behind `/ticket`: a small interface (base.py) with two implementations.

- `builtin.BuiltinTicketSystem`: the server is the system of record (its own store keeps the tickets).
- `http.HttpTicketSystem`: an outside system reached over HTTP (configured by `ticketing_url` + `ticketing_token`),
  which reports status changes back through the server's signed webhook.

`standin.py` is a local stand-in of such an outside system, for tests and demos; it is not a real ticket system.
"""

from __future__ import annotations

from .base import MAX_VERSION, TicketDraft, TicketingError, TicketSystem
from .builtin import BuiltinTicketSystem
from .http import HttpTicketSystem


def open_ticket_system(url: str, token: str | None, *, timeout: float) -> TicketSystem:
    """The outside system at `url` if one is configured, else the built-in one."""
    if url:
        assert token, "ticketing_url needs ticketing_token (checked by the settings)"
        return HttpTicketSystem(url, token, timeout=timeout)
    return BuiltinTicketSystem()


__all__ = [
    "MAX_VERSION",
    "BuiltinTicketSystem",
    "HttpTicketSystem",
    "TicketDraft",
    "TicketSystem",
    "TicketingError",
    "open_ticket_system",
]
