"""HTTP middleware: every error becomes `{ok: false, error: {code, message}}` with its status."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from aiohttp import web

from ..errors import ChatError, Forbidden, InvalidPayload, NotFound, Unauthorized, internal_error_dict
from ..models import User
from ..services import Services

log = logging.getLogger("chatserver.api")
SERVICES = web.AppKey("services", Services)

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(exc: ChatError) -> web.Response:
    return web.json_response(exc.to_dict(), status=exc.status)


@web.middleware
async def errors_middleware(request: web.Request, handler: _Handler) -> web.StreamResponse:
    services = request.app[SERVICES]
    try:
        return await handler(request)
    except ChatError as exc:
        services.metrics.errors.labels(code=exc.code).inc()
        return error_response(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = {404: "not_found", 405: "invalid_payload", 413: "invalid_payload"}.get(exc.status, "invalid_payload")
        services.metrics.errors.labels(code=code).inc()
        return web.json_response({"ok": False, "error": {"code": code, "message": exc.reason}}, status=exc.status)
    except Exception:
        services.metrics.errors.labels(code="internal_error").inc()
        log.exception("request failed", extra={"path": request.path})
        return web.json_response(internal_error_dict(), status=500)


async def json_body(request: web.Request) -> object:
    if request.content_type != "application/json":
        raise InvalidPayload("send a JSON body with Content-Type: application/json")
    try:
        return await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidPayload("the body is not valid JSON") from exc
    except RecursionError as exc:
        raise InvalidPayload("the body is nested too deeply") from exc


async def current_user(request: web.Request) -> User:
    from ..actions import accounts

    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("send Authorization: Bearer <token>")
    user, _ = await accounts.authenticate(request.app[SERVICES], token.strip())
    return user


async def current_admin(request: web.Request) -> User:
    """The signed-in user if they are an admin; checked before anything else of the request is read, so a
    non-admin learns nothing from the errors a bad body or query would give."""
    user = await current_user(request)
    if not user.is_admin:
        raise Forbidden("only an admin can do this")
    return user


def query_int(request: web.Request, name: str, *, low: int, high: int) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    # ASCII digits only (str.isdigit also takes "²" and "٣"), and few enough of them for int() to read
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 20 or not low <= int(raw) <= high:
        raise InvalidPayload(f"{name}: must be a whole number from {low} to {high}")
    return int(raw)


def query_time(request: web.Request, name: str) -> datetime | None:
    """An ISO 8601 time with a zone (`2026-12-03T08:00:00Z`), as UTC."""
    raw = request.query.get(name)
    if not raw:
        return None
    raw = raw.strip().replace(" ", "+")  # an unencoded "+08:00" arrives as " 08:00"
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidPayload(f"{name}: not an ISO 8601 time") from exc
    if value.tzinfo is None:
        raise InvalidPayload(f"{name}: give a time zone, e.g. 2026-12-03T08:00:00Z")
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:  # e.g. 0001-01-01T00:00:00+14:00 lies before the first representable UTC time
        raise InvalidPayload(f"{name}: out of range") from exc


__all__ = ["SERVICES", "NotFound", "current_user", "error_response", "errors_middleware", "json_body", "query_int"]
