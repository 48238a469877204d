"""The `store` fixture: one opened store per backend, so tests/storage/test_contract.py runs against each.

A backend is a name and a way to build a fresh, unopened store on the same data every time it is asked
(so a test can close the store and open the same data again). To add a backend (MongoDB), add one
entry to BACKENDS; every contract test then runs against it too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from chatserver.storage import Store
from chatserver.storage.sqlite import SQLiteStore


@dataclass(frozen=True)
class Backend:
    name: str
    make: Callable[[], Store]  # a new, unopened store on this backend's data

    async def open(self) -> Store:
        store = self.make()
        await store.open()
        return store


def _sqlite(tmp_path: Path) -> Backend:
    path = tmp_path / "data" / "chat.db"
    return Backend("sqlite", lambda: SQLiteStore(path))


BACKENDS: dict[str, Callable[[Path], Backend]] = {
    "sqlite": _sqlite,
}


@pytest.fixture(params=list(BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return BACKENDS[request.param](tmp_path)


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[Store]:
    opened = await backend.open()
    yield opened
    await opened.close()
