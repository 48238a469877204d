"""Health and metrics: what an operator's probes and Prometheus see."""

from __future__ import annotations

import re
import uuid

from tests.api.helpers import http, token_for
from tests.api.test_auth_rest import assert_error
from tests.conftest import RunningServer, room_id_by_title


async def scrape(server: RunningServer) -> dict[str, float]:
    status, text = await http(server, "GET", "/metrics")
    assert status == 200, text
    assert isinstance(text, str)
    samples = {}
    for line in text.splitlines():
        match = re.fullmatch(r"([a-z_]+(?:\{[^}]*\})?) ([-+0-9.e]+)", line)
        if match:
            samples[match.group(1)] = float(match.group(2))
    return samples


async def test_healthz(server):
    assert await http(server, "GET", "/healthz") == (200, {"ok": True, "store": "sqlite"})


async def test_metrics_counters_move(server, clients):
    before = await scrape(server)
    for name in ("chat_connections_total", "chat_connections_open", "chat_messages_sent_total"):
        assert name in before, sorted(before)

    sender = await clients(server, "am.wang")
    room_id = await room_id_by_title(sender, "星河")
    for i in range(2):
        payload = {"room_id": room_id, "text": f"指标{i}", "client_msg_id": uuid.uuid4().hex}
        ack = await sender.call("send_message", payload)
        assert ack["ok"] is True
    await sender.call("send_message", {"room_id": 123, "text": "x", "client_msg_id": "x"})
    await sender.call("get_history", {"room_id": "r_nowhere"})
    await http(server, "GET", "/api/me", headers={"Authorization": "Bearer junk"})
    token, _ = await token_for(server, "xh.li")
    await http(server, "GET", "/api/admin/users", token=token)

    after = await scrape(server)

    def moved(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    assert moved("chat_messages_sent_total") == 2
    assert moved("chat_connections_total") == 1
    assert moved("chat_connections_open") == 1
    assert moved('chat_errors_total{code="invalid_payload"}') == 1
    assert moved('chat_errors_total{code="not_found"}') == 1
    assert moved('chat_errors_total{code="unauthorized"}') == 1
    assert moved('chat_errors_total{code="forbidden"}') == 1

    await sender.disconnect()
    for _ in range(50):
        if (await scrape(server))["chat_connections_open"] == before["chat_connections_open"]:
            break
    assert (await scrape(server))["chat_connections_open"] == before["chat_connections_open"]


async def test_metrics_are_refused_to_addresses_not_allowed(server_factory):
    server = await server_factory(metrics_allow=["10.0.0.0/8"])
    status, body = await http(server, "GET", "/metrics")
    assert_error(status, body, 403, "forbidden")
    # and a forwarded-for header does not get round it
    status, body = await http(server, "GET", "/metrics", headers={"X-Forwarded-For": "10.1.2.3"})
    assert_error(status, body, 403, "forbidden")
