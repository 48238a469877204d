"""Routes the bank's service-management platform calls, signed with the shared secret (see signing.py)."""

from __future__ import annotations

import json
import logging

from aiohttp import web

from ..actions import projects
from ..errors import InvalidPayload, Unauthorized
from ..schemas import PlatformProject, StageChange, parse
from ..signing import verify
from .middleware import SERVICES

_MAX_BODY = 256 * 1024
log = logging.getLogger("chatserver.platform")


async def signed_json(request: web.Request, secret: str | None, *, sender: str = "platform") -> tuple[object, str]:
    """The body, parsed, and the delivery id, once the signature (with `secret`) over the raw bytes checks out.

    Shared by every signed webhook (the platform's, the ticket system's); `sender` names the caller in the log."""
    # The whole body, however it arrives: `content.read(n)` returns only what is buffered so far (a chunked
    # or slow body would be cut short and its signature fail).
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > _MAX_BODY:
            raise InvalidPayload("the body is too large")
        chunks.append(chunk)
    body = b"".join(chunks)
    # request.headers, not a dict of it: header names are case-insensitive (proxies and HTTP/2 lower-case them).
    try:
        delivery_id = verify(secret, request.headers, body)
    except Unauthorized as exc:  # forged, stale or unsigned: operators should see attempts
        log.warning(f"{sender} request refused", extra={"path": request.path, "reason": exc.message})
        raise
    try:
        return json.loads(body), delivery_id
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidPayload("the body is not valid JSON") from exc


async def register_project(request: web.Request) -> web.Response:
    raw, delivery_id = await signed_json(request, request.app[SERVICES].settings.platform_secret)
    payload = parse(PlatformProject, raw)
    project, created = await projects.register_project(request.app[SERVICES], payload, delivery_id=delivery_id)
    return web.json_response(
        {"ok": True, "created": created, "project": project.to_wire(admin_view=True)}, status=201 if created else 200
    )


async def change_stage(request: web.Request) -> web.Response:
    raw, delivery_id = await signed_json(request, request.app[SERVICES].settings.platform_secret)
    payload = parse(StageChange, raw)
    if payload.external_id != request.match_info["external_id"]:
        raise InvalidPayload("external_id: the body names another project than the URL")
    project, moved = await projects.change_stage(
        request.app[SERVICES],
        payload.external_id,
        payload.stage,  # type: ignore[arg-type]
        delivery_id=delivery_id,
    )
    return web.json_response({"ok": True, "moved": moved, "project": project.to_wire(admin_view=True)})


def add_platform_routes(app: web.Application) -> None:
    app.router.add_post("/api/integrations/platform/projects", register_project)
    app.router.add_post("/api/integrations/platform/projects/{external_id}/stage", change_stage)
