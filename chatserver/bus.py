"""The in-process event bus. Actions publish; the broadcaster (and later bots, mail) subscribe.

Subscribers are awaited in the order they subscribed, so every subscriber sees events in publish
order. A subscriber that fails is logged and does not stop the others or the publisher; a subscriber
with slow work (a bot, an email) must hand it to a task of its own rather than hold the bus.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from .events import Event

Subscriber = Callable[[Event], Awaitable[None]]
log = logging.getLogger("chatserver.bus")


class EventBus:
    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    async def publish(self, event: Event) -> None:
        for subscriber in self._subscribers:
            try:
                await subscriber(event)
            except Exception:
                log.exception("subscriber failed", extra={"event_type": type(event).__name__})
