"""Log lines are structured and never carry tokens, passwords or message text."""

from __future__ import annotations

import io
import json
import logging

import aiohttp

from chatserver.logs import JsonFormatter
from tests.conftest import connect, login, room_id_by_title


async def test_logs_are_json_lines_without_secrets_or_message_text(server):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        async with aiohttp.ClientSession() as http:
            await http.post(f"{server.url}/api/auth/login", json={"username": "am.wang", "password": "wrong-Pa55word"})
        token = await login(server.url, "am.wang")
        client = await connect(server.url, token)
        room_id = await room_id_by_title(client, "星河")
        secret_text = "机密：账户余额 12345678"
        await client.call("send_message", {"room_id": room_id, "text": secret_text, "client_msg_id": "log-1"})
        await client.call("send_message", {"room_id": room_id, "text": 42, "client_msg_id": "log-2"})
        await client.disconnect()
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)

    output = stream.getvalue()
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]
    assert any(line.get("outcome") == "failure" for line in lines)  # the failed login is logged...
    assert any(line.get("msg") == "connected" for line in lines)
    for forbidden in (token, "wrong-Pa55word", "cloud2026", secret_text, "12345678"):
        assert forbidden not in output  # ...but no secret and no message text ever is
