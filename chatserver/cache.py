"""A small per-process cache of what every event checks, kept honest by the store's change counters.

Entries are tagged with the store's counter (`Store.access_version`) as it was *before* the read that filled them:
a write that lands while the read is under way bumps the counter, so that read's answer is never served. A bump
empties the cache; writes to memberships and rooms are rare next to the events that read them.
"""

from __future__ import annotations

from .models import Membership, Room

MAX_ENTRIES = 100_000  # (room, member) pairs; past this the cache starts over


class AccessCache:
    """(room id, user id) → (room, membership), for members only. The counters in them (`Room.last_seq`,
    `Membership.last_read_seq`) are as they were when read: read those from the store."""

    def __init__(self) -> None:
        self._version = -1
        self._entries: dict[tuple[str, str], tuple[Room, Membership]] = {}

    def _at(self, version: int) -> bool:
        if version > self._version:
            self._entries.clear()
            self._version = version
        return version == self._version

    def get(self, version: int, room_id: str, user_id: str) -> tuple[Room, Membership] | None:
        return self._entries.get((room_id, user_id)) if self._at(version) else None

    def put(self, version: int, room_id: str, user_id: str, found: tuple[Room, Membership]) -> None:
        """`version`: the store's counter read before the look-up that found this."""
        if not self._at(version):
            return  # something changed while it was being read
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[(room_id, user_id)] = found
