"""A local stand-in of an outside ticket system: a small aiohttp app speaking the API http.py expects.

It is not a real ticket system (it keeps tickets in memory and forgets them when it stops). Tests start it on an
ephemeral port; operators can run it to try HTTP mode by hand:

    python -m integrations.ticketing.standin --port 8090 --token "$TOKEN" \\
        --webhook-url http://127.0.0.1:8080/api/webhooks/tickets --webhook-secret "$SECRET"

and then move a ticket as someone working in that system would:
`curl -X PATCH -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d '{"status": "resolved"}'
http://127.0.0.1:8090/tickets/OPS-1`. Every status change (made through its API, by the chat server or anyone else)
is reported to the webhook URL, signed like the service platform's requests (chatserver/signing.py), from a
background task as real systems do: `{"key", "status", "version"}`, where `version` counts the ticket's changes
in this system (1 when filed, + 1 per status change), so the chat server can tell a late echo of its own change
from news. Its answers carry the ticket's `version` too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from chatserver.signing import signed_headers

STATUSES = ("open", "in_progress", "resolved", "closed")


@dataclass
class Delivery:
    """A webhook the stand-in sent: the exact bytes and headers, so a test can replay it."""

    body: bytes
    headers: dict[str, str]
    status: int = 0  # the answer's HTTP status (0: no answer)


@dataclass
class StandIn:
    token: str
    webhook_url: str | None = None
    webhook_secret: str | None = None
    prefix: str = "OPS"
    tickets: dict[str, dict[str, Any]] = field(default_factory=dict)
    deliveries: list[Delivery] = field(default_factory=list)
    fail_with: int | None = None  # tests: answer every API call with this status
    delay: float = 0.0  # tests: wait this long before answering
    versions: bool = True  # False: like a system that reports no `version` (webhooks and answers without it)
    _by_idempotency_key: dict[str, str] = field(default_factory=dict)
    _tasks: set[asyncio.Task[Delivery | None]] = field(default_factory=set)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/tickets", self._create)
        app.router.add_get("/tickets/{key}", self._get)
        app.router.add_patch("/tickets/{key}", self._patch)
        app.on_cleanup.append(self._cleanup)
        return app

    # what someone working in the outside system does --------------------------------------------
    async def set_status(self, key: str, status: str) -> Delivery | None:
        """Move a ticket, and report it to the webhook now (awaited): the delivery as sent, if there is a URL."""
        return await self.notify(self._move(key, status))

    def _move(self, key: str, status: str) -> dict[str, Any]:
        """Change a ticket's status; the webhook body reporting this change (as it is now, not when it is sent)."""
        ticket = self.tickets[key]
        ticket["status"] = status
        ticket["version"] += 1
        return self._view(ticket)

    def _view(self, ticket: dict[str, Any]) -> dict[str, Any]:
        view = {"key": ticket["key"], "status": ticket["status"], "version": ticket["version"]}
        if not self.versions:
            del view["version"]
        return view

    async def notify(self, change: dict[str, Any]) -> Delivery | None:
        if not self.webhook_url or not self.webhook_secret:
            return None
        body = json.dumps(change).encode()
        return await self.deliver(Delivery(body, signed_headers(self.webhook_secret, body, uuid.uuid4().hex)))

    async def deliver(self, delivery: Delivery) -> Delivery:
        """Send (or send again: a replay, with the same delivery id and signature) a webhook delivery."""
        assert self.webhook_url
        try:
            async with aiohttp.ClientSession() as http:
                async with http.post(self.webhook_url, data=delivery.body, headers=delivery.headers) as resp:
                    delivery.status = resp.status
        except aiohttp.ClientError:
            delivery.status = 0
        self.deliveries.append(delivery)
        return delivery

    # the API -------------------------------------------------------------------------------------
    async def _refusal(self, request: web.Request) -> web.Response | None:
        """An error answer for a call that must fail (tests' failure modes, a bad token); None to go on."""
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail_with is not None:
            return web.json_response({"error": "failing on purpose"}, status=self.fail_with)
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
            return web.json_response({"error": "bad token"}, status=401)
        return None

    async def _create(self, request: web.Request) -> web.Response:
        refused = await self._refusal(request)
        if refused is not None:
            return refused
        body = await request.json()
        idem = request.headers.get("Idempotency-Key", "")
        if idem and idem in self._by_idempotency_key:
            key = self._by_idempotency_key[idem]
            return web.json_response(self._view(self.tickets[key]))
        if not isinstance(body, dict) or not isinstance(body.get("title"), str) or not body["title"]:
            return web.json_response({"error": "title is required"}, status=400)
        key = f"{self.prefix}-{len(self.tickets) + 1}"
        self.tickets[key] = {**body, "key": key, "status": "open", "version": 1}
        if idem:
            self._by_idempotency_key[idem] = key
        return web.json_response(self._view(self.tickets[key]), status=201)

    async def _get(self, request: web.Request) -> web.Response:
        refused = await self._refusal(request)
        if refused is not None:
            return refused
        ticket = self.tickets.get(request.match_info["key"])
        if ticket is None:
            return web.json_response({"error": "no such ticket"}, status=404)
        return web.json_response(ticket)

    async def _patch(self, request: web.Request) -> web.Response:
        refused = await self._refusal(request)
        if refused is not None:
            return refused
        key = request.match_info["key"]
        body = await request.json()
        if key not in self.tickets:
            return web.json_response({"error": "no such ticket"}, status=404)
        if not isinstance(body, dict) or body.get("status") not in STATUSES:
            return web.json_response({"error": "status must be one of " + ", ".join(STATUSES)}, status=400)
        change = self._move(key, body["status"])
        task = asyncio.get_running_loop().create_task(self.notify(change))  # after answering, as real systems do
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return web.json_response(change)

    async def _cleanup(self, app: web.Application) -> None:
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def main() -> None:
    parser = argparse.ArgumentParser(description="A local stand-in of an outside ticket system (not a real one).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--token", required=True, help="the API token the chat server must send")
    parser.add_argument("--webhook-url", help="the chat server's POST /api/webhooks/tickets")
    parser.add_argument("--webhook-secret", help="the chat server's ticketing_webhook_secret")
    args = parser.parse_args()
    standin = StandIn(args.token, webhook_url=args.webhook_url, webhook_secret=args.webhook_secret)
    web.run_app(standin.app(), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
