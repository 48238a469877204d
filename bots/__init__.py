"""Bots: small classes that react to domain events and slash commands (base.py), run by runner.py."""

from __future__ import annotations

from .base import Bot
from .help import HelpBot
from .tickets import TicketBot


def builtin_bots() -> list[Bot]:
    """The bots every server runs (each can be turned off or limited in settings: `[bots.<name>]`)."""
    return [HelpBot(), TicketBot()]
