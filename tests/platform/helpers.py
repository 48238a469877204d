"""Helpers for the tests of issue 3: signed platform requests, admin REST, and connected users without password costs.

The signature is computed here independently of chatserver/signing.py (HMAC-SHA256 over "{timestamp}.{body}"),
so a mistake in the server's signing code cannot hide behind the same mistake in the test.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import aiohttp

from tests.conftest import ChatClient, RunningServer, connect

SECRET = "platform-secret-for-the-tests-0123456789"
PROJECTS = "/api/integrations/platform/projects"
BANK = "云帆银行交易银行部"
HUAYUE = "华岳能源股份有限公司"
XINGHE = "星河制造集团有限公司"
RUIFENG = "瑞丰物流股份有限公司"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def project_payload(external_id: str = "SMP-2026-0031", **changes: Any) -> dict[str, Any]:
    """A platform project for 华岳能源 with its account manager, a solution expert and one new client contact."""
    payload: dict[str, Any] = {
        "external_id": external_id,
        "name": "银企直连",
        "client_org": HUAYUE,
        "products": ["银企直连"],
        "stage": "presales",
        "people": [
            {"username": "am.wang", "name": "王晓明", "role": "account_manager"},
            {"username": "se.chen", "name": "陈思远", "role": "solution_expert"},
            {"username": "hy.qiao", "name": "乔一帆", "role": "client_contact", "email": "qiao@huayue-energy.example"},
        ],
    }
    payload.update(changes)
    return payload


async def platform_post(
    server: RunningServer,
    path: str,
    payload: Any = None,
    *,
    body: bytes | None = None,
    secret: str = SECRET,
    delivery_id: str | None = None,
    timestamp: str | None = None,
    headers: dict[str, str] | None = None,
    drop: tuple[str, ...] = (),
) -> tuple[int, Any]:
    """A POST signed as the platform signs it; `headers` override, `drop` leaves headers out."""
    raw = body if body is not None else json.dumps(payload, ensure_ascii=False).encode()
    ts = timestamp if timestamp is not None else str(int(time.time()))
    sent = {
        "Content-Type": "application/json",
        "X-Timestamp": ts,
        "X-Delivery-Id": delivery_id or uuid.uuid4().hex,
        "X-Signature": sign(secret, ts, raw),
        **(headers or {}),
    }
    for name in drop:
        sent.pop(name)
    async with aiohttp.ClientSession() as http:
        async with http.post(server.url + path, data=raw, headers=sent) as resp:
            return resp.status, await resp.json(content_type=None)


async def register(server: RunningServer, payload: dict[str, Any], **kw: Any) -> dict[str, Any]:
    """Register a project; the project as answered (asserting it was created)."""
    status, answer = await platform_post(server, PROJECTS, payload, **kw)
    assert status == 201, answer
    assert answer["created"] is True
    project: dict[str, Any] = answer["project"]
    return project


async def move(server: RunningServer, external_id: str, stage: str, **kw: Any) -> tuple[int, Any]:
    return await platform_post(
        server, f"{PROJECTS}/{external_id}/stage", {"external_id": external_id, "stage": stage}, **kw
    )


async def rest(
    server: RunningServer, method: str, path: str, *, token: str | None = None, **kwargs: Any
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as http:
        async with http.request(method, server.url + path, headers=headers, **kwargs) as resp:
            return resp.status, await resp.json(content_type=None)


async def user_id(server: RunningServer, username: str) -> str:
    user = await server.services.store.get_user_by_username(username)
    assert user is not None, username
    return user.id


async def token_of(server: RunningServer, username: str) -> str:
    """A token exactly as login issues it, without paying for an argon2 verification."""
    return server.services.tokens.issue(await user_id(server, username))


class People:
    """Connected users for one test, disconnected at its end (see the `people` fixtures)."""

    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self._made: list[ChatClient] = []
        self._admin: str | None = None

    async def connect(self, username: str) -> ChatClient:
        client = await connect(self.server.url, await token_of(self.server, username))
        client.user_id = await user_id(self.server, username)
        self._made.append(client)
        return client

    async def admin_token(self) -> str:
        if self._admin is None:
            self._admin = await token_of(self.server, "admin")
        return self._admin

    async def admin(self, method: str, path: str, body: Any = None) -> Any:
        """An admin REST call that must succeed; its answer."""
        status, answer = await rest(self.server, method, path, token=await self.admin_token(), json=body)
        assert status in (200, 201), (status, answer)
        return answer

    async def create_user(self, username: str, name: str, org: str, kind: str, roles: list[str], **patch: Any) -> str:
        """A user made through the admin REST routes (and patched with skills, duty, ... if given); its id."""
        made = await self.admin(
            "POST", "/api/admin/users", {"username": username, "name": name, "org": org, "kind": kind, "roles": roles}
        )
        uid: str = made["user"]["id"]
        if patch:
            await self.admin("PATCH", f"/api/admin/users/{uid}", patch)
        return uid

    async def close(self) -> None:
        for client in self._made:
            await client.disconnect()
