"""Fixtures for the HTTP tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tests.api.helpers import token_for
from tests.conftest import ChatClient, RunningServer, connect


@pytest.fixture
async def clients() -> AsyncIterator[Callable[..., Any]]:
    """As the shared `clients`, with tokens from the server's own issuer instead of a (slow on purpose) login."""
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
