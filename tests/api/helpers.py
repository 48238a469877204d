"""Helpers for the HTTP tests and the auth tests: a plain JSON client, and tokens forged with PyJWT."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import jwt

from tests.conftest import (
    RunningServer,
    token_for,  # noqa: F401 (re-exported for the tests here)
)


async def http(
    server: RunningServer,
    method: str,
    path: str,
    *,
    token: str | None = None,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> tuple[int, Any]:
    """One request; the status and the body (parsed as JSON when it is JSON, else the text)."""
    all_headers = dict(headers or {})
    if token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    async with aiohttp.ClientSession() as session:
        async with session.request(method, f"{server.url}{path}", headers=all_headers, **kwargs) as resp:
            if resp.content_type == "application/json":
                return resp.status, await resp.json()
            return resp.status, await resp.text()


def server_secret(server: RunningServer) -> str:
    return server.settings.jwt_secret or (server.data_dir / "jwt_secret").read_text().strip()


def forge(
    server: RunningServer,
    user_id: str,
    *,
    secret: str | None = None,
    algorithm: str = "HS256",
    drop: tuple[str, ...] = (),
    **claims: Any,
) -> str:
    """A token for `user_id` as the server would issue it, with `claims` changed and the `drop` claims left out."""
    now = datetime.now(UTC)
    body: dict[str, Any] = {
        "sub": user_id,
        "iat": now,
        "exp": now + timedelta(hours=1),
        "iss": server.settings.jwt_issuer,
        "aud": server.settings.jwt_audience,
        **claims,
    }
    for name in drop:
        body.pop(name)
    key = None if algorithm == "none" else (secret or server_secret(server))
    return jwt.encode(body, key, algorithm=algorithm)


def bad_tokens(server: RunningServer, user_id: str) -> dict[str, str]:
    """Tokens the server must refuse, by what is wrong with them (all name a real, active user)."""
    past = datetime.now(UTC) - timedelta(hours=2)
    return {
        "expired": forge(server, user_id, iat=past, exp=past + timedelta(hours=1)),
        "other secret": forge(server, user_id, secret="another-secret-that-is-at-least-32-chars-long"),
        "alg none": forge(server, user_id, algorithm="none"),
        "alg HS512": forge(server, user_id, algorithm="HS512"),
        "no aud": forge(server, user_id, drop=("aud",)),
        "no iss": forge(server, user_id, drop=("iss",)),
        "no exp": forge(server, user_id, drop=("exp",)),
        "no iat": forge(server, user_id, drop=("iat",)),
        "no sub": forge(server, user_id, drop=("sub",)),
        "wrong aud": forge(server, user_id, aud="some-other-service"),
        "wrong iss": forge(server, user_id, iss="https://idp.example.com"),
        "unknown user": forge(server, "u_0000000000000000"),
        "sub not a string": forge(server, user_id, sub=12345),
        "garbage": "not-a-jwt",
        "three dots": "a.b.c",
        "tampered": _tamper(forge(server, user_id)),
    }


def _tamper(token: str) -> str:
    """The same token with one character of the signature changed."""
    head, _, signature = token.rpartition(".")
    flipped = "A" if signature[0] != "A" else "B"
    return f"{head}.{flipped}{signature[1:]}"
