"""The composition root: `create_app(settings)` builds every service once and wires them together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence

import socketio
from aiohttp import web

from bots import builtin_bots
from bots.base import Bot
from bots.runner import BotRunner

from .actions.rooms import ensure_system_user
from .api.middleware import SERVICES, errors_middleware
from .api.routes import add_routes, security_headers
from .auth import Passwords, Tokens, load_or_create_secret
from .bus import EventBus
from .demo import seed_demo
from .metrics import Metrics
from .presence import Presence
from .ratelimit import RateLimiter
from .realtime.broadcaster import Broadcaster
from .realtime.namespace import ChatNamespace
from .services import Services
from .settings import Settings
from .storage import open_store

log = logging.getLogger("chatserver.app")
NAMESPACE = web.AppKey("namespace", ChatNamespace)
SIO = web.AppKey("sio", socketio.AsyncServer)
BOT_RUNNER = web.AppKey("bot_runner", BotRunner)


def build_services(settings: Settings) -> Services:
    secret = settings.jwt_secret or load_or_create_secret(settings.data_dir)
    return Services(
        settings=settings,
        store=open_store(settings.resolved_store_url),
        bus=EventBus(),
        tokens=Tokens(settings, secret),
        passwords=Passwords(),
        presence=Presence(),
        metrics=Metrics(),
        send_limiter=RateLimiter(settings.rate_send_per_second, settings.rate_send_burst),
        event_limiter=RateLimiter(settings.rate_events_per_second, settings.rate_events_burst),
        login_limiter=RateLimiter(settings.rate_login_per_minute / 60, settings.rate_login_per_minute),
        login_ip_limiter=RateLimiter(settings.rate_login_ip_per_minute / 60, settings.rate_login_ip_per_minute),
    )


def create_app(settings: Settings, *, extra_bots: Sequence[Bot] = ()) -> web.Application:
    """`extra_bots` run beside the built-in ones (tests add bots that echo, fail or hang this way)."""
    services = build_services(settings)
    # SettingsError for an unknown [bots.<name>]
    bot_runner = BotRunner(services, [*builtin_bots(settings), *extra_bots])
    app = web.Application(middlewares=[security_headers, errors_middleware], client_max_size=1024 * 1024)
    app[SERVICES] = services

    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        cors_allowed_origins=settings.allowed_origins,  # None: same origin only
        max_http_buffer_size=settings.max_packet_bytes,
        async_handlers=False,  # one socket's events run in the order sent: its messages keep their order
        logger=False,
        engineio_logger=False,
    )
    namespace = ChatNamespace(services)
    sio.register_namespace(namespace)
    sio.attach(app)
    services.bus.subscribe(Broadcaster(sio, services))
    services.bus.subscribe(bot_runner)  # after the broadcaster: people see a message before bots act on it
    app[NAMESPACE] = namespace
    app[BOT_RUNNER] = bot_runner
    app[SIO] = sio
    add_routes(app)

    async def lifespan(app: web.Application) -> AsyncIterator[None]:
        await services.store.open()
        watcher = asyncio.get_running_loop().create_task(namespace.watch_sessions(settings.session_check_seconds))
        try:  # a start that fails (e.g. a bot's bad config) still closes what it opened
            await ensure_system_user(services)
            if settings.demo and await seed_demo(services):
                log.info("demo data seeded")
            await bot_runner.start()
            yield
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            await bot_runner.stop()
            await services.store.close()

    async def drain(app: web.Application) -> None:
        """On shutdown: refuse new events, let the ones under way finish their writes, close sockets."""
        services.draining = True
        await namespace.drain(settings.shutdown_grace_seconds)
        for sid in services.presence.all_sids():
            await sio.disconnect(sid)
        await sio.shutdown()

    app.cleanup_ctx.append(lifespan)
    app.on_shutdown.append(drain)
    return app
