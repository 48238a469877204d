"""The ticket system interface: file a ticket (→ its key in that system), change a ticket's status."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

MAX_VERSION = 2**53  # an outside system's ticket version: a whole number 0..2**53 (what JSON carries exactly)


class TicketingError(Exception):
    """The ticket system refused a call, failed, or did not answer in time. The message says which, for people;
    it never carries the token or the ticket's text."""


@dataclass(frozen=True, slots=True)
class TicketDraft:
    """What the server sends when filing. `idempotency_key` is the same for every attempt to file the same
    ticket (it names the source message), so a retried call never makes a second ticket there."""

    idempotency_key: str
    number: int  # the server's own number for the ticket
    title: str
    description: str
    project: str | None  # the project's external id (the service platform's), if the room has a project
    room: str  # the room's title
    reporter: str  # "name (org)"
    link: str  # absolute link back to the source message in the web client


class TicketSystem(Protocol):
    @property
    def mode(self) -> str:
        """`builtin` or `http`."""
        ...

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def create(self, draft: TicketDraft) -> str | None:
        """File the ticket; its key in the outside system, or None where the server itself is the system."""
        ...

    async def update_status(self, external_key: str | None, status: str) -> int | None:
        """Tell the system of a status change made on the server's side (the web client, REST). Returns the
        ticket's version in that system after the change, if it says (None otherwise)."""
        ...
