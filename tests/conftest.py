"""Shared fixtures: the real server on an ephemeral port, real Socket.IO and HTTP clients."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import socketio
from aiohttp import web

from bots.base import Bot
from chatserver.actions.rooms import ensure_system_user
from chatserver.api.middleware import SERVICES
from chatserver.app import build_services, create_app
from chatserver.demo import DEMO_PASSWORD, seed_demo
from chatserver.services import Services
from chatserver.settings import Settings, load_settings
from integrations.llm_standin import create_standin_app
from tests.smtp import LocalSmtp


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Settings of a test server. The AI advisor loads its knowledge base on its first question rather than at start
    (`warm_up`: a second or two of CPU per server otherwise), unless the test configures it otherwise."""
    bots = {name: dict(value) for name, value in (overrides.pop("bots", None) or {}).items()}
    advisor = bots.setdefault("advisor", {})
    advisor["config"] = {"warm_up": False, **advisor.get("config", {})}
    return load_settings(
        environ={}, overrides={"data_dir": data_dir, "host": "127.0.0.1", "port": 0, "bots": bots, **overrides}
    )


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir with the demo seeded, made once; each server starts from a copy (hashing is slow on purpose)."""
    data_dir = tmp_path_factory.mktemp("demo-template")

    async def seed() -> None:
        services = build_services(make_settings(data_dir))
        await services.store.open()
        await ensure_system_user(services)
        await seed_demo(services)
        await services.store.close()

    asyncio.run(seed())
    return data_dir


@dataclass
class RunningServer:
    url: str
    runner: web.AppRunner
    settings: Settings
    data_dir: Path

    @property
    def app(self) -> web.Application:
        return self.runner.app

    @property
    def services(self) -> Services:
        return self.app[SERVICES]

    async def stop(self) -> None:
        """Shut down as on SIGTERM: drain events, close sockets, close the store."""
        if self.runner.server is not None:
            await self.runner.cleanup()


ROOT = Path(__file__).resolve().parents[1]


def run_py_env(**settings: str) -> dict[str, str]:
    """The environment for `run.py` in a test: no CHAT_* setting from outside, these ones added."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("CHAT_")}, **settings}


async def start_run_py(data_dir: Path, env: dict[str, str]) -> tuple[asyncio.subprocess.Process, str]:
    """`python run.py --data-dir DIR --port 0` as a process of its own, once it says where it listens: (process, url).
    The caller stops it (terminate, or SIGTERM)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "run.py",
        "--data-dir",
        str(data_dir),
        "--port",
        "0",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=env,
    )
    assert proc.stdout is not None
    while True:
        line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
        assert line, "the server exited before it was ready"
        if match := re.search(r"(http://127\.0\.0\.1:\d+)/", line):
            return proc, match.group(1)


async def start_server(settings: Settings, bots: Sequence[Bot] = ()) -> tuple[web.AppRunner, str]:
    app = create_app(settings, extra_bots=bots)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


ServerFactory = Callable[..., Any]


@pytest.fixture
async def server_factory(demo_template: Path, tmp_path: Path) -> AsyncIterator[ServerFactory]:
    """Start servers on a copy of the demo data: `await server_factory(**setting_overrides)`; `extra_bots=[...]`
    runs test bots beside the built-in ones."""
    runners: list[web.AppRunner] = []
    data_dir = tmp_path / "data"

    async def start(fresh: bool = False, extra_bots: Sequence[Bot] = (), **overrides: Any) -> RunningServer:
        if not data_dir.exists():
            if fresh:
                data_dir.mkdir()
            else:
                shutil.copytree(demo_template, data_dir)
        settings = make_settings(data_dir, **overrides)
        runner, url = await start_server(settings, extra_bots)
        runners.append(runner)
        return RunningServer(url=url, runner=runner, settings=settings, data_dir=data_dir)

    yield start
    for runner in reversed(runners):
        if runner.server is not None:
            await runner.cleanup()


@pytest.fixture
async def server(server_factory: ServerFactory) -> RunningServer:
    srv: RunningServer = await server_factory()
    return srv


# clients -------------------------------------------------------------------------------------------


async def login(url: str, username: str, password: str = DEMO_PASSWORD) -> str:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{url}/api/auth/login", json={"username": username, "password": password}) as resp:
            body = await resp.json()
            assert resp.status == 200, body
            return str(body["token"])


@dataclass
class ChatClient:
    """A real Socket.IO client that records what the server sends it."""

    sio: socketio.AsyncClient
    user_id: str = ""
    received: list[tuple[str, Any]] = field(default_factory=list)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def call(self, event: str, payload: Any = None, timeout: float = 5) -> dict[str, Any]:
        ack: dict[str, Any] = await self.sio.call(event, payload if payload is not None else {}, timeout=timeout)
        return ack

    async def wait_for(self, event: str, predicate: Callable[[Any], bool] = lambda _: True, timeout: float = 5) -> Any:
        async def seen() -> Any:
            async with self._changed:
                while True:
                    for name, data in self.received:
                        if name == event and predicate(data):
                            return data
                    await self._changed.wait()

        return await asyncio.wait_for(seen(), timeout)

    def events(self, event: str) -> list[Any]:
        return [data for name, data in self.received if name == event]

    async def record(self, event: str, data: Any) -> None:
        async with self._changed:
            self.received.append((event, data))
            self._changed.notify_all()

    async def disconnect(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()


SERVER_EVENTS = (
    "message",
    "message_edited",
    "message_deleted",
    "read",
    "typing",
    "presence",
    "room_added",
    "room_removed",
    "room_updated",
    "expert_session",
    "queue_position",
    "expert_queue",
    "notice",
    "project_updated",
    "ticket_updated",
)


async def connect(url: str, token: str | None, **kwargs: Any) -> ChatClient:
    sio = socketio.AsyncClient(reconnection=False)
    client = ChatClient(sio=sio)

    def recorder(name: str) -> Callable[..., Any]:
        async def handler(data: Any = None, *rest: Any) -> None:
            await client.record(name, data)

        return handler

    for name in (*SERVER_EVENTS, "disconnect"):
        sio.on(name, recorder(name))
    await sio.connect(
        url, auth={"token": token} if token is not None else None, transports=["websocket"], wait_timeout=5, **kwargs
    )
    return client


async def token_for(server: RunningServer, username: str) -> tuple[str, str]:
    """(token, user id) for a user: a token exactly as login issues it, without paying for a password hash
    (slow on purpose; login itself is tested in tests/api and tests/actions)."""
    user = await server.services.store.get_user_by_username(username)
    assert user is not None, username
    return server.services.tokens.issue(user.id), user.id


@pytest.fixture
async def clients() -> AsyncIterator[Callable[..., Any]]:
    """`await clients(server, "am.wang")`: a signed-in, connected client, disconnected after the test."""
    made: list[ChatClient] = []

    async def make(srv: RunningServer, username: str) -> ChatClient:
        token, user_id = await token_for(srv, username)
        client = await connect(srv.url, token)
        client.user_id = user_id
        made.append(client)
        return client

    yield make
    for client in made:
        await client.disconnect()


async def room_id_by_title(client: ChatClient, fragment: str) -> str:
    ack = await client.call("list_rooms")
    for room in ack["rooms"]:
        if fragment in room["title"]:
            return str(room["id"])
    raise AssertionError(f"no room titled like {fragment!r}")


@pytest.fixture
async def smtp_server() -> AsyncIterator[LocalSmtp]:
    """A real SMTP server (aiosmtpd) on an ephemeral port, keeping what arrives (tests/smtp.py)."""
    server = await LocalSmtp().start()
    yield server
    await server.stop()


# the AI advisor's model ------------------------------------------------------------------------------

LLM_KEY = "sk-standin-0123456789abcdef"


@dataclass
class RunningStandin:
    """The local stand-in of the chat-completions API (integrations/llm_standin.py) on an ephemeral port."""

    url: str
    app: web.Application

    def settings(self, model: str = "standin-echo", **overrides: Any) -> dict[str, Any]:
        """Server settings that point the advisor at it."""
        return {"llm_base_url": self.url, "llm_api_key": LLM_KEY, "llm_model": model, **overrides}


@pytest.fixture
async def llm_standin() -> AsyncIterator[RunningStandin]:
    app = create_standin_app(api_key=LLM_KEY, slow_seconds=5)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield RunningStandin(url=f"http://127.0.0.1:{runner.addresses[0][1]}", app=app)
    await runner.cleanup()
