"""Bots: small classes that react to domain events and slash commands (base.py), run by runner.py."""

from __future__ import annotations

from chatserver.settings import Settings
from integrations.llm import LlmClient

from .advisor import AdvisorBot
from .base import Bot
from .help import HelpBot
from .tickets import TicketBot


def builtin_bots(settings: Settings) -> list[Bot]:
    """The bots every server runs (each can be turned off or limited in settings: `[bots.<name>]`), given the
    outside services they use."""
    return [HelpBot(), TicketBot(), AdvisorBot(llm=llm_client(settings))]


def llm_client(settings: Settings) -> LlmClient | None:
    """The AI advisor's model client, or None when no model is configured (`llm_base_url` empty)."""
    if not settings.llm_base_url or not settings.llm_api_key:
        return None
    return LlmClient(
        base_url=settings.llm_base_url,
        api_key=settings.llm_api_key,
        model=settings.llm_model,
        timeout_seconds=settings.llm_timeout_seconds,
    )
