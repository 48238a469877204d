"""The services the composition root builds once and hands to handlers, actions and bots."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from integrations.ticketing import BuiltinTicketSystem, TicketSystem

from .auth import Passwords, Tokens
from .bus import EventBus
from .cache import AccessCache
from .metrics import Metrics
from .presence import Presence
from .ratelimit import RateLimiter
from .settings import Settings
from .storage import Store


@dataclass(slots=True)
class Services:
    settings: Settings
    store: Store
    bus: EventBus
    tokens: Tokens
    passwords: Passwords
    presence: Presence
    metrics: Metrics
    send_limiter: RateLimiter
    event_limiter: RateLimiter
    login_limiter: RateLimiter  # per address and username
    login_ip_limiter: RateLimiter  # per address
    ticket_system: TicketSystem = field(default_factory=BuiltinTicketSystem)  # built-in, or an outside one (HTTP)
    expert_desk_lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one dispatcher at a time
    # Ticket status changes one at a time: stored and published in the same order, so rooms hear them in order.
    ticket_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    access: AccessCache = field(default_factory=AccessCache)  # members' rooms, for the per-event membership check
    system_user_id: str = ""  # the sender of system messages, set when the store opens
    draining: bool = field(default=False)
