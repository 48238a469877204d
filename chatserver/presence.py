"""Which users have sockets open in this process, and which sockets."""

from __future__ import annotations


class Presence:
    def __init__(self) -> None:
        self._sids: dict[str, set[str]] = {}

    def connect(self, user_id: str, sid: str) -> bool:
        """Record a socket; True if it is the user's first."""
        sids = self._sids.setdefault(user_id, set())
        sids.add(sid)
        return len(sids) == 1

    def disconnect(self, user_id: str, sid: str) -> bool:
        """Forget a socket; True if it was the user's last."""
        sids = self._sids.get(user_id)
        if not sids or sid not in sids:
            return False
        sids.discard(sid)
        if not sids:
            del self._sids[user_id]
            return True
        return False

    def sids(self, user_id: str) -> list[str]:
        return list(self._sids.get(user_id, ()))

    def user_ids(self) -> list[str]:
        return list(self._sids)

    def all_sids(self) -> list[str]:
        return [sid for sids in self._sids.values() for sid in sids]

    def is_online(self, user_id: str) -> bool:
        return user_id in self._sids

    @property
    def connection_count(self) -> int:
        return sum(len(s) for s in self._sids.values())
