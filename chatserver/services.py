"""The services the composition root builds once and hands to handlers, actions and bots."""

from __future__ import annotations

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
    draining: bool = field(default=False)
