"""Every platform test runs against a server that has a platform secret."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import RunningServer, ServerFactory
from tests.platform.helpers import SECRET, People


@pytest.fixture
async def server(server_factory: ServerFactory, request: pytest.FixtureRequest) -> RunningServer:
    """`@pytest.mark.products([...])` on a test configures the product catalogue."""
    marker = request.node.get_closest_marker("products")
    extra = {"products": marker.args[0]} if marker else {}
    srv: RunningServer = await server_factory(platform_secret=SECRET, **extra)
    return srv


@pytest.fixture
async def people(server: RunningServer) -> AsyncIterator[People]:
    pool = People(server)
    yield pool
    await pool.close()
