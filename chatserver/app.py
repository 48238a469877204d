"""The composition root: `create_app(settings)` builds every service once and wires them together."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Sequence

import socketio
from aiohttp import web

from bots import builtin_bots
from bots.base import Bot
from bots.runner import BotRunner
from integrations.mail import Mailer, OutboxTransport, SmtpTransport, Transport
from integrations.ticketing import open_ticket_system

from .actions.rooms import ensure_system_user
from .api.middleware import SERVICES, errors_middleware
from .api.routes import add_routes, security_headers
from .auth import Passwords, Tokens, load_or_create_secret
from .bus import EventBus
from .demo import seed_demo
from .mail_notifier import MailNotifier
from .metrics import Metrics
from .presence import Presence
from .ratelimit import RateLimiter
from .realtime.broadcaster import Broadcaster
from .realtime.namespace import ChatNamespace
from .realtime.packet import JsonFirstPacket
from .services import Services
from .settings import Settings
from .storage import open_store

log = logging.getLogger("chatserver.app")
NAMESPACE = web.AppKey("namespace", ChatNamespace)
SIO = web.AppKey("sio", socketio.AsyncServer)
BOT_RUNNER = web.AppKey("bot_runner", BotRunner)
MAIL_NOTIFIER = web.AppKey("mail_notifier", MailNotifier)


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
        ticket_system=open_ticket_system(
            settings.ticketing_url, settings.ticketing_token, timeout=settings.ticketing_timeout_seconds
        ),
    )


def build_mailer(settings: Settings) -> Mailer:
    """SMTP when `mail_smtp_host` is set; otherwise `.eml` files in the outbox directory."""
    transport: Transport
    if settings.mail_smtp_host:
        transport = SmtpTransport(
            settings.mail_smtp_host,
            settings.mail_smtp_port,
            security=settings.mail_smtp_security,
            username=settings.mail_smtp_username,
            password=settings.mail_smtp_password,
            timeout=settings.mail_smtp_timeout_seconds,
            ca_file=str(settings.mail_smtp_ca_file) if settings.mail_smtp_ca_file else None,
        )
    else:
        transport = OutboxTransport(settings.resolved_outbox_dir)
    return Mailer(transport, from_name=settings.mail_from_name, from_addr=settings.mail_from)


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
        serializer=JsonFirstPacket,  # JSON-encodes once, without python-socketio's Python walk for binary data
        logger=False,
        engineio_logger=False,
    )
    namespace = ChatNamespace(services)
    sio.register_namespace(namespace)
    sio.attach(app)
    services.bus.subscribe(Broadcaster(sio, services))
    services.bus.subscribe(bot_runner)  # after the broadcaster: people see a message before bots act on it
    mail_notifier = MailNotifier(services, build_mailer(settings))
    services.bus.subscribe(mail_notifier)
    app[NAMESPACE] = namespace
    app[BOT_RUNNER] = bot_runner
    app[MAIL_NOTIFIER] = mail_notifier
    app[SIO] = sio
    add_routes(app)

    async def lifespan(app: web.Application) -> AsyncIterator[None]:
        await services.store.open()
        await services.ticket_system.open()
        watcher = asyncio.get_running_loop().create_task(namespace.watch_sessions(settings.session_check_seconds))
        try:  # a start that fails (e.g. a bot's bad config) still closes what it opened
            await ensure_system_user(services)
            if settings.demo and await seed_demo(services):
                log.info("demo data seeded")
            await bot_runner.start()
            await mail_notifier.start()
            log.info("email goes to %s", mail_notifier.transport_description)
            yield
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            await bot_runner.stop()
            await mail_notifier.stop()
            await services.ticket_system.close()
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


def settle_memory_for_serving() -> None:
    """Called once by `run.py` when the server is up (not by `create_app`: tests build many apps in one process).

    What start-up built lives as long as the process: the advisor's knowledge base and jieba's dictionary, the
    modules, the caches. `gc.freeze()` takes it out of the cyclic collector's view; otherwise every full collection
    walks it again and holds up the event loop, which showed as 150–230 ms stalls in the fan-out benchmark. A higher
    first threshold makes the young collections, which run while messages are being delivered, rarer (the objects of
    a delivery are freed by reference counting, not by the collector)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
