"""`Mailer`: the emails the server sends, each rendered (templates.py), composed (compose.py) and handed to the
transport. Raises `HeaderInjection` or `ValueError` for a value that cannot go into an email, and the transport's
errors for one that could not be delivered."""

from __future__ import annotations

from datetime import UTC, datetime

from . import templates
from .compose import compose
from .templates import MentionItem, Rendered
from .transport import Transport


class Mailer:
    def __init__(self, transport: Transport, *, from_name: str, from_addr: str) -> None:
        self.transport = transport
        self.from_name = from_name
        self.from_addr = from_addr

    async def _send(self, to_name: str, to_addr: str, rendered: Rendered, kind: str) -> None:
        message = compose(
            from_name=self.from_name,
            from_addr=self.from_addr,
            to_name=to_name,
            to_addr=to_addr,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            now=datetime.now(UTC),
            headers={"X-Cloud-Advisor-Kind": kind},
        )
        await self.transport.send(message)

    async def send_mention_digest(self, *, to_name: str, to_addr: str, items: list[MentionItem]) -> None:
        if not items:
            raise ValueError("a mention digest needs at least one message")
        await self._send(to_name, to_addr, templates.mention_digest(to_name, items), "mention-digest")

    async def send_invitation(
        self,
        *,
        to_name: str,
        to_addr: str,
        username: str,
        link: str,
        expires_at: datetime,
        project_title: str | None = None,
    ) -> None:
        rendered = templates.invitation(to_name, username, link, expires_at, project_title)
        await self._send(to_name, to_addr, rendered, "invitation")
