"""The HTTP ticket-system client against the outside system's stand-in on an ephemeral port."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from integrations.ticketing import BuiltinTicketSystem, HttpTicketSystem, TicketDraft, TicketingError
from integrations.ticketing.standin import StandIn

TOKEN = "outside-system-token"


def draft(key: str = "chat-ticket:m_1", title: str = "证书无法下载") -> TicketDraft:
    return TicketDraft(
        idempotency_key=key,
        number=7,
        title=title,
        description="测试环境证书下载报错",
        project="SMP-2026-0017",
        room="星河制造集团有限公司 · 银企直连",
        reporter="李娜 (星河制造集团有限公司)",
        link="http://127.0.0.1:8080/#room=r_1&msg=m_1",
    )


@pytest.fixture
async def standin() -> AsyncIterator[tuple[StandIn, str]]:
    system = StandIn(TOKEN)
    runner = web.AppRunner(system.app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield system, f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


@pytest.fixture
async def client(standin: tuple[StandIn, str]) -> AsyncIterator[HttpTicketSystem]:
    made = HttpTicketSystem(standin[1], TOKEN, timeout=0.5)
    await made.open()
    yield made
    await made.close()


async def test_create_files_once_per_idempotency_key(standin: tuple[StandIn, str], client: HttpTicketSystem) -> None:
    system, _ = standin
    assert await client.create(draft()) == "OPS-1"
    assert await client.create(draft()) == "OPS-1"  # a retry of the same filing
    assert await client.create(draft("chat-ticket:m_2", "另一个问题")) == "OPS-2"
    filed = system.tickets["OPS-1"]
    assert filed["title"] == "证书无法下载" and filed["project"] == "SMP-2026-0017" and filed["number"] == 7
    assert filed["link"].endswith("#room=r_1&msg=m_1") and filed["status"] == "open"


async def test_update_status(standin: tuple[StandIn, str], client: HttpTicketSystem) -> None:
    system, _ = standin
    key = await client.create(draft())
    assert await client.update_status(key, "resolved") == 2  # the ticket's version there: filed 1, + 1 per change
    assert system.tickets["OPS-1"]["status"] == "resolved"
    system.versions = False  # a system that says no version: None, and the change is made all the same
    assert await client.update_status(key, "closed") is None
    assert system.tickets["OPS-1"]["status"] == "closed"
    with pytest.raises(TicketingError, match="does not know this ticket"):
        await client.update_status("OPS-404", "resolved")
    with pytest.raises(TicketingError, match="no key"):
        await client.update_status(None, "resolved")


async def test_a_wrong_token_is_a_clear_error(standin: tuple[StandIn, str]) -> None:
    wrong = HttpTicketSystem(standin[1], "not-the-token", timeout=1)
    try:
        with pytest.raises(TicketingError, match=r"refused the configured token \(401\)") as caught:
            await wrong.create(draft())
        assert "not-the-token" not in str(caught.value)
    finally:
        await wrong.close()
    assert standin[0].tickets == {}


async def test_a_failing_system_is_a_clear_error(standin: tuple[StandIn, str], client: HttpTicketSystem) -> None:
    standin[0].fail_with = 503
    with pytest.raises(TicketingError, match="answered 503"):
        await client.create(draft())


async def test_a_slow_system_times_out(standin: tuple[StandIn, str], client: HttpTicketSystem) -> None:
    standin[0].delay = 2
    with pytest.raises(TicketingError, match=r"did not answer within 0.5 s"):
        await client.create(draft())


async def test_an_unreachable_system_is_a_clear_error() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    unreachable = HttpTicketSystem(f"http://127.0.0.1:{port}", TOKEN, timeout=1)
    try:
        with pytest.raises(TicketingError, match="cannot be reached"):
            await unreachable.create(draft())
    finally:
        await unreachable.close()


async def test_the_builtin_system_has_nobody_to_tell() -> None:
    builtin = BuiltinTicketSystem()
    assert builtin.mode == "builtin"
    assert await builtin.create(draft()) is None
    await builtin.update_status(None, "closed")
