"""A client of an outside ticket system over HTTP (a Jira-like REST API), as the stand-in in standin.py speaks it:

- `POST {url}/tickets` with `Authorization: Bearer <token>`, `Idempotency-Key: <key>` and a JSON body
  `{title, description, project, room, reporter, link, number}` → `201` (or `200` for a repeat of the same key)
  `{"key": "OPS-17", "status": "open"}`;
- `PATCH {url}/tickets/{key}` with `{"status": "resolved"}` → `200 {"key", "status", "version"?}` (`version`, if the
  system sends it: the ticket's version there after the change, a whole number that grows with every change).

Every failure becomes a `TicketingError` with a clear message: the token refused (401/403), no such ticket (404),
the system failing (5xx), no answer within the timeout, no connection, an answer that is not what was promised.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

import aiohttp

from .base import MAX_VERSION, TicketDraft, TicketingError


class HttpTicketSystem:
    mode = "http"

    def __init__(self, url: str, token: str, *, timeout: float = 3.0) -> None:
        self._url = url.rstrip("/")
        self._token = token
        self._timeout = timeout
        self._http: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._timeout))

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def create(self, draft: TicketDraft) -> str | None:
        body = {
            "number": draft.number,
            "title": draft.title,
            "description": draft.description,
            "project": draft.project,
            "room": draft.room,
            "reporter": draft.reporter,
            "link": draft.link,
        }
        answer = await self._call("POST", "/tickets", body, {"Idempotency-Key": draft.idempotency_key}, (200, 201))
        key = answer.get("key")
        if not isinstance(key, str) or not key or len(key) > 64:
            raise TicketingError("the ticket system's answer has no ticket key")
        return key

    async def update_status(self, external_key: str | None, status: str) -> int | None:
        if not external_key:
            raise TicketingError("the ticket has no key in the ticket system")
        answer = await self._call("PATCH", f"/tickets/{quote(external_key, safe='')}", {"status": status}, {}, (200,))
        version = answer.get("version")
        if isinstance(version, int) and not isinstance(version, bool) and 0 <= version <= MAX_VERSION:
            return version
        return None  # no version (or not one): the server tells this change's echo by its status

    async def _call(
        self, method: str, path: str, body: dict[str, Any], headers: dict[str, str], ok: tuple[int, ...]
    ) -> dict[str, Any]:
        if self._http is None:
            await self.open()
        assert self._http is not None
        sent = {"Authorization": f"Bearer {self._token}", "Accept": "application/json", **headers}
        try:
            async with self._http.request(method, self._url + path, json=body, headers=sent) as resp:
                if resp.status in (401, 403):
                    raise TicketingError(f"the ticket system refused the configured token ({resp.status})")
                if resp.status == 404:
                    raise TicketingError("the ticket system does not know this ticket (404)")
                if resp.status not in ok:
                    raise TicketingError(f"the ticket system answered {resp.status}")
                try:
                    answer = await resp.json(content_type=None)
                except ValueError as exc:
                    raise TicketingError("the ticket system's answer is not JSON") from exc
        except TimeoutError as exc:
            raise TicketingError(f"the ticket system did not answer within {self._timeout:g} s") from exc
        except asyncio.CancelledError:
            raise
        except aiohttp.ClientError as exc:
            raise TicketingError(f"the ticket system cannot be reached ({type(exc).__name__})") from exc
        if not isinstance(answer, dict):
            raise TicketingError("the ticket system's answer is not a JSON object")
        return answer
