"""Browser tests for the web client: fixtures and helpers.

Uses Debian's Chromium (/usr/bin/chromium) through Playwright; never downloads a browser.
The `server` fixture (tests/conftest.py) starts the real server with demo data.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import socketio

CHROMIUM = "/usr/bin/chromium"
HAVE_CHROMIUM = os.path.exists(CHROMIUM)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "cloud2026"
# Rooms are found by a part of their title (the client's name), not the whole title.
XH_ROOM = "星河制造集团"
RF_ROOM = "瑞丰物流"
TIMEOUT_MS = 10_000


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if HAVE_CHROMIUM:
        return
    if os.environ.get("CI", "").lower() == "true":
        return  # the browser fixture fails loudly instead
    skip = pytest.mark.skip(reason=f"{CHROMIUM} not installed")
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.path).startswith(here):
            item.add_marker(skip)


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[Any]:
    if not HAVE_CHROMIUM:
        pytest.fail(f"{CHROMIUM} is missing and CI=true: the web client tests must run")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            await b.close()


@dataclass
class UserPage:
    """One user in one browser context."""

    username: str
    context: Any
    page: Any
    errors: list[str] = field(default_factory=list)

    def tid(self, testid: str) -> Any:
        return self.page.get_by_test_id(testid)

    def room(self, title: str) -> Any:
        return self.tid("room-item").filter(has_text=title)

    def messages(self) -> Any:
        return self.tid("message-list").get_by_test_id("message")

    def message(self, text: str) -> Any:
        return self.messages().filter(has=self.page.get_by_test_id("message-text").get_by_text(text, exact=True))

    async def open_room(self, title: str) -> None:
        from playwright.async_api import expect

        await self.room(title).click()
        await expect(self.tid("chat-title")).to_contain_text(title)
        await expect(self.tid("message-list")).to_have_attribute("data-loaded", "true")

    async def texts(self) -> list[str]:
        """The texts of the messages shown, top to bottom."""
        texts: list[str] = await self.tid("message-list").get_by_test_id("message-text").all_inner_texts()
        return texts

    async def seqs(self) -> list[int]:
        return [int(s) for s in await self.messages().evaluate_all("els => els.map(e => e.dataset.seq)")]

    async def assert_shown_once_in_order(self, expected: list[str]) -> None:
        """Each expected text is shown exactly once, in this order (others' messages may come between),
        and the whole list is in strictly increasing seq order."""
        shown = await self.texts()
        wanted = set(expected)
        assert [t for t in shown if t in wanted] == expected, shown
        seqs = await self.seqs()
        assert seqs == sorted(set(seqs)), seqs

    async def send(self, text: str) -> None:
        await self.tid("message-input").fill(text)
        await self.tid("message-input").press("Enter")


@pytest_asyncio.fixture
async def open_user(browser: Any, server: Any) -> AsyncIterator[Any]:
    """Factory: log a demo user in, in a fresh browser context, through the login form."""
    from playwright.async_api import expect

    made: list[UserPage] = []

    async def _open(username: str, *, login: bool = True, viewport: dict[str, int] | None = None) -> UserPage:
        context = await browser.new_context(
            viewport=viewport or {"width": 1360, "height": 860}, locale="zh-CN", timezone_id="Asia/Shanghai"
        )
        context.set_default_timeout(TIMEOUT_MS)

        page = await context.new_page()
        up = UserPage(username, context, page)
        page.on("pageerror", lambda exc: up.errors.append(f"pageerror: {exc}"))
        # The server sends a strict Content-Security-Policy (no inline script or style):
        # any violation the client causes is reported on the console and fails the test.
        page.on(
            "console",
            lambda msg: (
                up.errors.append(f"console: {msg.text}")
                if msg.type == "error" and "Content Security Policy" in msg.text
                else None
            ),
        )
        await page.goto(server.url + "/")
        made.append(up)
        if login:
            await up.tid("login-username").fill(username)
            await up.tid("login-password").fill(PASSWORD)
            await up.tid("login-submit").click()
            await expect(up.tid("room-item").first).to_be_visible()
            await expect(up.tid("connection-status")).to_have_attribute("data-state", "online")
        return up

    yield _open
    for up in made:
        await up.context.close()
    for up in made:
        assert not up.errors, f"{up.username}: browser errors: {up.errors}"


@pytest_asyncio.fixture
async def restart_server(server: Any) -> AsyncIterator[Any]:
    """`await restart_server()`: stop the server (as on SIGTERM) and start it again on the same
    port and data dir, so that browsers already on the page reconnect to it."""
    from aiohttp import web

    from chatserver.app import create_app

    runners: list[Any] = []
    port = int(server.url.rsplit(":", 1)[1])

    async def _restart() -> None:
        if runners:
            await runners[-1].cleanup()
        else:
            await server.stop()
        runner = web.AppRunner(create_app(server.settings), handle_signals=False, access_log=None, shutdown_timeout=2)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, reuse_address=True).start()
        runners.append(runner)

    yield _restart
    for runner in runners:
        if runner.server is not None:
            await runner.cleanup()


# ---- talking to the server directly (to seed data), as a second client would ----


async def api_login(base_url: str, username: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base_url}/api/auth/login", json={"username": username, "password": PASSWORD}) as resp:
            assert resp.status == 200, await resp.text()
            body: dict[str, Any] = await resp.json()
            return body


async def room_id_by_title(base_url: str, token: str, title: str) -> str:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base_url}/api/rooms", headers={"Authorization": f"Bearer {token}"}) as resp:
            assert resp.status == 200, await resp.text()
            rooms = (await resp.json())["rooms"]
    return next(str(r["id"]) for r in rooms if title in r["title"])


class SocketUser:
    """A real Socket.IO client logged in as a demo user."""

    def __init__(self, base_url: str, username: str) -> None:
        self.base_url = base_url
        self.username = username
        self.sio = socketio.AsyncClient(reconnection=False)

    async def __aenter__(self) -> SocketUser:
        login = await api_login(self.base_url, self.username)
        self.token = login["token"]
        self.user = login["user"]
        await self.sio.connect(
            self.base_url,
            auth={"token": self.token},
            headers={"Origin": self.base_url},
            transports=["websocket"],
            socketio_path="/socket.io/",
            wait_timeout=10,
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.sio.disconnect()

    async def call(self, event: str, payload: dict[str, Any]) -> dict[str, Any]:
        ack: dict[str, Any] = await self.sio.call(event, payload, timeout=10)
        return ack

    async def send(self, room_id: str, text: str) -> dict[str, Any]:
        """send_message, waiting and retrying (same client_msg_id) when rate limited."""
        cid = str(uuid.uuid4())
        for _ in range(200):
            res = await self.call("send_message", {"room_id": room_id, "text": text, "client_msg_id": cid})
            if res.get("ok"):
                message: dict[str, Any] = res["message"]
                return message
            assert res["error"]["code"] == "rate_limited", res
            await asyncio.sleep(0.05)
        raise AssertionError("still rate limited")
