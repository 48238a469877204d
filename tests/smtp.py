"""A real SMTP server for the tests (aiosmtpd), on an ephemeral port in the test's own event loop.

It keeps what arrives, parsed with the stdlib (`email.policy.default`: headers decoded), and can be told to refuse
messages for a while, or to require a login.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    raw: bytes
    login: str | None

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    def part(self, subtype: str) -> str:
        """The decoded text of the `text/<subtype>` part."""
        body = self.message.get_body(preferencelist=(subtype,))
        assert body is not None and body.get_content_type() == f"text/{subtype}", subtype
        content: str = body.get_content()
        return content


@dataclass
class LocalSmtp:
    host: str = "127.0.0.1"
    port: int = 0
    received: list[Received] = field(default_factory=list)
    refuse: int = 0  # refuse this many messages (451) before accepting again
    credentials: tuple[str, str] | None = None  # (username, password) the server accepts, when set
    # TLS: "starttls" (plain connection, STARTTLS required before anything else) or "tls" (TLS from the first byte),
    # with this context holding the server's certificate.
    tls: str | None = None
    tls_context: ssl.SSLContext | None = None
    _server: asyncio.Server | None = None
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def start(self) -> LocalSmtp:
        loop = asyncio.get_running_loop()

        def factory() -> SMTP:
            return SMTP(
                self,
                hostname="smtp.test",
                loop=loop,
                authenticator=self._authenticate if self.credentials else None,
                auth_require_tls=self.tls == "starttls",  # implicit TLS: aiosmtpd cannot tell, but it is
                tls_context=self.tls_context if self.tls == "starttls" else None,
                require_starttls=self.tls == "starttls",
            )

        implicit = self.tls_context if self.tls == "tls" else None
        self._server = await loop.create_server(factory, self.host, 0, ssl=implicit)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any) -> Any:
        ok = isinstance(data, LoginPassword) and (data.login.decode(), data.password.decode()) == self.credentials
        return AuthResult(success=ok, handled=False, auth_data=data if ok else None)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.refuse > 0:
            self.refuse -= 1
            return "451 4.3.0 try again later"
        raw = envelope.original_content or b""
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
        async with self._changed:
            self.received.append(
                Received(str(envelope.mail_from), [str(r) for r in envelope.rcpt_tos], message, raw, login)
            )
            self._changed.notify_all()
        return "250 OK"

    async def wait_for(self, count: int, timeout: float = 5) -> list[Received]:
        """The first `count` messages, once that many have arrived."""

        async def arrived() -> list[Received]:
            async with self._changed:
                await self._changed.wait_for(lambda: len(self.received) >= count)
                return self.received[:count]

        return await asyncio.wait_for(arrived(), timeout)

    def to(self, address: str) -> list[Received]:
        return [r for r in self.received if address in r.rcpt_tos]

    def where(self, predicate: Callable[[Received], bool]) -> list[Received]:
        return [r for r in self.received if predicate(r)]
