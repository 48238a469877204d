"""Ticket REST routes and the ticket webhook: every bad input gets a clear JSON error and changes nothing."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import aiohttp

from tests.conftest import RunningServer, ServerFactory, room_id_by_title
from tests.platform.helpers import rest, sign, token_of

XINGHE = "星河制造"
SECRET = "ticketing-webhook-secret-0123456789abcdef"


async def filed_ticket(server: RunningServer, clients: Any) -> str:
    """File ticket #1 in the 星河 room through the bot; the room's id."""
    staff = await clients(server, "am.wang")
    room_id = await room_id_by_title(staff, XINGHE)
    ack = await staff.call("send_message", {"room_id": room_id, "text": "/ticket 接口超时", "client_msg_id": "c-1"})
    assert ack["ok"], ack
    await staff.wait_for("ticket_updated")
    return room_id


async def webhook(server: RunningServer, body: bytes, *, secret: str = SECRET, **headers: str) -> tuple[int, Any]:
    ts = str(int(time.time()))
    sent = {
        "Content-Type": "application/json",
        "X-Timestamp": ts,
        "X-Delivery-Id": uuid.uuid4().hex,
        "X-Signature": sign(secret, ts, body),
        **headers,
    }
    async with aiohttp.ClientSession() as http:
        async with http.post(server.url + "/api/webhooks/tickets", data=body, headers=sent) as resp:
            return resp.status, await resp.json(content_type=None)


async def test_ticket_routes_refuse_bad_requests_clearly(server: RunningServer, clients: Any) -> None:
    room_id = await filed_ticket(server, clients)
    staff = await token_of(server, "am.wang")

    assert (await rest(server, "GET", f"/api/rooms/{room_id}/tickets"))[0] == 401
    assert (await rest(server, "PATCH", "/api/tickets/1", json={"status": "closed"}))[0] == 401
    for path in ("/api/tickets/0", "/api/tickets/abc", "/api/tickets/%C2%B2", "/api/tickets/99999999999999999999"):
        code, answer = await rest(server, "GET", path, token=staff)
        assert code == 400 and answer["error"]["code"] == "invalid_payload", (path, answer)
    assert (await rest(server, "GET", "/api/rooms/r_nope/tickets", token=staff))[0] == 404
    for body in ({"status": "done"}, {"status": 1}, {}, {"status": "closed", "by": "someone"}, ["closed"]):
        code, answer = await rest(server, "PATCH", "/api/tickets/1", token=staff, json=body)
        assert code == 400 and answer["error"]["code"] == "invalid_payload", (body, answer)
    code, answer = await rest(server, "PATCH", "/api/tickets/1", token=staff, data=b"status=closed")
    assert code == 400
    code, answer = await rest(server, "PATCH", "/api/tickets/2", token=staff, json={"status": "closed"})
    assert code == 404 and answer["error"]["code"] == "not_found"

    # Nothing changed.
    code, answer = await rest(server, "GET", "/api/tickets/1", token=staff)
    assert code == 200 and answer["ticket"]["status"] == "open" and answer["ticket"]["changes"] == []


async def test_webhooks_are_refused_without_a_secret(server: RunningServer, clients: Any) -> None:
    await filed_ticket(server, clients)
    body = json.dumps({"key": "OPS-1", "status": "closed"}).encode()
    code, answer = await webhook(server, body)
    assert code == 401 and answer["error"]["code"] == "unauthorized"


async def test_bad_webhooks_change_nothing(server_factory: ServerFactory, clients: Any) -> None:
    server: RunningServer = await server_factory(ticketing_webhook_secret=SECRET)
    await filed_ticket(server, clients)
    body = json.dumps({"key": "OPS-1", "status": "closed"}).encode()

    assert (await webhook(server, body, secret="another-secret-0123456789abcdefghij"))[0] == 401
    assert (await webhook(server, body, **{"X-Timestamp": str(int(time.time()) - 3600)}))[0] == 401
    code, answer = await webhook(server, b"not json")
    assert code == 400 and answer["error"]["code"] == "invalid_payload"
    code, answer = await webhook(server, json.dumps({"key": "OPS-1", "status": "gone"}).encode())
    assert code == 400 and answer["error"]["code"] == "invalid_payload"
    code, answer = await webhook(server, json.dumps({"status": "closed"}).encode())
    assert code == 400  # the body must name the ticket
    # Built-in tickets have no outside key: no webhook can name them.
    code, answer = await webhook(server, body)
    assert code == 404 and answer["error"]["code"] == "not_found"
    ticket = await server.services.store.get_ticket(1)
    assert ticket is not None and ticket.status == "open" and ticket.change_seq == 0
