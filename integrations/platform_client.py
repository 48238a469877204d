"""The service platform's side of its signed API, for operators (`run.py platform-send`) and tests."""

from __future__ import annotations

import json
import uuid
from typing import Any

import aiohttp

from chatserver.signing import signed_headers


async def send_signed(
    base_url: str, path: str, payload: Any, secret: str, *, delivery_id: str | None = None
) -> tuple[int, dict[str, Any]]:
    """POST `payload` as JSON, signed like the platform signs it. Returns (status, parsed answer)."""
    body = json.dumps(payload, ensure_ascii=False).encode()
    headers = signed_headers(secret, body, delivery_id or uuid.uuid4().hex)
    async with aiohttp.ClientSession() as http:
        async with http.post(base_url.rstrip("/") + path, data=body, headers=headers) as resp:
            answer: dict[str, Any] = await resp.json(content_type=None)
            return resp.status, answer


async def register_project(
    base_url: str, project: dict[str, Any], secret: str, **kw: Any
) -> tuple[int, dict[str, Any]]:
    return await send_signed(base_url, "/api/integrations/platform/projects", project, secret, **kw)


async def change_stage(
    base_url: str, external_id: str, stage: str, secret: str, **kw: Any
) -> tuple[int, dict[str, Any]]:
    path = f"/api/integrations/platform/projects/{external_id}/stage"
    return await send_signed(base_url, path, {"external_id": external_id, "stage": stage}, secret, **kw)
