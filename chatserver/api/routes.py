"""REST routes: each parses, takes the user from the token, calls one action, and shapes the answer."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from aiohttp import web

from ..actions import accounts, audit, invitations, messages, projects, rooms
from ..errors import Forbidden
from ..models import iso
from ..schemas import AcceptInvitation, CreateUser, Login, UpdateUser, parse
from .middleware import SERVICES, current_admin, current_user, json_body, query_int, query_time
from .platform import add_platform_routes
from .tickets import add_ticket_routes

WEBCLIENT_DIR = Path(__file__).resolve().parents[2] / "webclient"
_MAX_SEQ = 2**53


async def login(request: web.Request) -> web.Response:
    p = parse(Login, await json_body(request))
    token, user = await accounts.login(
        request.app[SERVICES], username=p.username, password=p.password, client_ip=request.remote or ""
    )
    return web.json_response({"ok": True, "token": token, "user": user.to_wire()})


async def accept_invitation(request: web.Request) -> web.Response:
    p = parse(AcceptInvitation, await json_body(request))
    token, user = await invitations.accept_invitation(
        request.app[SERVICES], token=p.token, password=p.password, client_ip=request.remote or ""
    )
    return web.json_response({"ok": True, "token": token, "user": user.to_wire()})


async def me(request: web.Request) -> web.Response:
    user = await current_user(request)
    return web.json_response({"ok": True, "user": user.to_wire()})


async def list_rooms(request: web.Request) -> web.Response:
    user = await current_user(request)
    return web.json_response({"ok": True, "rooms": await rooms.list_rooms(request.app[SERVICES], user)})


async def room_messages(request: web.Request) -> web.Response:
    user = await current_user(request)
    limit = query_int(request, "limit", low=1, high=100)
    page, has_more = await messages.get_history(
        request.app[SERVICES],
        user,
        room_id=request.match_info["room_id"],
        before_seq=query_int(request, "before_seq", low=0, high=_MAX_SEQ),
        after_seq=query_int(request, "after_seq", low=0, high=_MAX_SEQ),
        limit=limit or 50,
    )
    return web.json_response({"ok": True, "messages": page, "has_more": has_more})


async def room_members(request: web.Request) -> web.Response:
    user = await current_user(request)
    members = await rooms.get_members(request.app[SERVICES], user, room_id=request.match_info["room_id"])
    return web.json_response({"ok": True, "members": members})


async def admin_list_users(request: web.Request) -> web.Response:
    user = await current_user(request)
    users = await accounts.list_users(request.app[SERVICES], user)
    return web.json_response({"ok": True, "users": [u.to_wire() for u in users]})


async def admin_create_user(request: web.Request) -> web.Response:
    actor = await current_admin(request)
    p = parse(CreateUser, await json_body(request))
    user = await accounts.create_user(
        request.app[SERVICES],
        actor,
        username=p.username,
        name=p.name,
        org=p.org,
        kind=p.kind,  # type: ignore[arg-type]
        roles=p.roles,
        password=p.password,
        active=p.active,
    )
    return web.json_response({"ok": True, "user": user.to_wire()}, status=201)


async def admin_update_user(request: web.Request) -> web.Response:
    actor = await current_admin(request)
    p = parse(UpdateUser, await json_body(request))
    user = await accounts.update_user(
        request.app[SERVICES],
        actor,
        request.match_info["user_id"],
        name=p.name,
        org=p.org,
        roles=p.roles,
        active=p.active,
        password=p.password,
        email=p.email,
        skills=p.skills,
        duty=p.duty,
        max_sessions=p.max_sessions,
    )
    return web.json_response({"ok": True, "user": user.to_wire()})


async def admin_resend_invitation(request: web.Request) -> web.Response:
    actor = await current_admin(request)
    invitation = await invitations.resend_invitation(request.app[SERVICES], actor, request.match_info["user_id"])
    return web.json_response({"ok": True, "expires_at": iso(invitation.expires_at)}, status=201)


async def admin_audit(request: web.Request) -> web.Response:
    user = await current_admin(request)
    entries = await audit.list_audit(
        request.app[SERVICES],
        user,
        since=query_time(request, "since"),
        until=query_time(request, "until"),
        actor_id=request.query.get("actor_id") or None,
        room_id=request.query.get("room_id") or None,
        limit=query_int(request, "limit", low=1, high=1000) or 100,
    )
    return web.json_response({"ok": True, "entries": [e.to_wire() for e in entries]})


async def admin_projects(request: web.Request) -> web.Response:
    user = await current_admin(request)
    return web.json_response({"ok": True, "projects": await projects.list_projects(request.app[SERVICES], user)})


async def healthz(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    try:
        await services.store.ping()
    except Exception:
        return web.json_response({"ok": False, "store": services.store.backend}, status=503)
    return web.json_response({"ok": True, "store": services.store.backend})


async def metrics(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    peer = request.remote or ""
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        address = None
    networks = [ipaddress.ip_network(n, strict=False) for n in services.settings.metrics_allow]
    if address is None or not any(address in net for net in networks):
        raise Forbidden("metrics are not served to this address")
    return web.Response(body=services.metrics.render(), content_type="text/plain", charset="utf-8")


async def index(request: web.Request) -> web.FileResponse:
    response = web.FileResponse(WEBCLIENT_DIR / "index.html")
    response.headers["Cache-Control"] = "no-cache"
    return response


@web.middleware
async def security_headers(request: web.Request, handler):  # type: ignore[no-untyped-def]
    response = await handler(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    if not request.path.startswith("/socket.io"):
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        )
    return response


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/auth/login", login)
    app.router.add_post("/api/invitations/accept", accept_invitation)
    app.router.add_get("/api/me", me)
    app.router.add_get("/api/rooms", list_rooms)
    app.router.add_get("/api/rooms/{room_id}/messages", room_messages)
    app.router.add_get("/api/rooms/{room_id}/members", room_members)
    app.router.add_get("/api/admin/users", admin_list_users)
    app.router.add_post("/api/admin/users", admin_create_user)
    app.router.add_patch("/api/admin/users/{user_id}", admin_update_user)
    app.router.add_post("/api/admin/users/{user_id}/invitation", admin_resend_invitation)
    app.router.add_get("/api/admin/audit", admin_audit)
    app.router.add_get("/api/admin/projects", admin_projects)
    add_platform_routes(app)
    add_ticket_routes(app)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/", index)
    if WEBCLIENT_DIR.is_dir():
        app.router.add_static("/static/", WEBCLIENT_DIR, follow_symlinks=False)
