"""The services the composition root builds once and hands to handlers, actions and bots."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from .auth import Passwords, Tokens
from .bus import EventBus
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
    expert_desk_lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one dispatcher at a time
    system_user_id: str = ""  # the sender of system messages, set when the store opens
    draining: bool = field(default=False)
