"""Storage backends behind one contract (`base.Store`), chosen by URL."""

from __future__ import annotations

from .base import BotStateFull, DuplicateKey, Revision, RoomClosed, Store

__all__ = ["BotStateFull", "DuplicateKey", "Revision", "RoomClosed", "Store", "open_store"]


def open_store(url: str) -> Store:
    """Build (not yet open) the store a URL names.

    `sqlite:///data/chat.db` (relative path) or `sqlite:////var/lib/chat/chat.db` (absolute path)."""
    scheme = url.split(":", 1)[0]
    if scheme == "sqlite" and url.startswith("sqlite:///") and len(url) > len("sqlite:///"):
        from .sqlite import SQLiteStore

        return SQLiteStore(url.removeprefix("sqlite:///"))
    raise ValueError(f"unsupported store URL {scheme}://… (expected sqlite:///path/to/file.db)")
