"""Prometheus counters, in a registry of the app's own (no module-level state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.connections = Counter("chat_connections", "Socket.IO connections accepted", registry=self.registry)
        self.connections_open = Gauge("chat_connections_open", "Socket.IO connections open now", registry=self.registry)
        self.messages_sent = Counter("chat_messages_sent", "Messages stored", registry=self.registry)
        self.errors = Counter("chat_errors", "Errors answered, by code", ["code"], registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)
