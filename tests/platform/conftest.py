"""Every platform test runs against a server that has a platform secret."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import RunningServer, ServerFactory
from tests.platform.helpers import SECRET, People


@pytest.fixture
async def server(server_factory: ServerFactory) -> RunningServer:
    srv: RunningServer = await server_factory(platform_secret=SECRET)
    return srv


@pytest.fixture
async def people(server: RunningServer) -> AsyncIterator[People]:
    pool = People(server)
    yield pool
    await pool.close()
