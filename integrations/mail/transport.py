"""Where composed emails go: an outbox directory (the embedded default) or an SMTP server.

Both take a composed `EmailMessage` and raise on failure (`OSError`, `aiosmtplib.SMTPException`); the caller decides
what to retry. Neither logs the message: it holds people's text and, for invitations, a one-time link.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Literal, Protocol

import aiosmtplib

SmtpSecurity = Literal["starttls", "tls", "none"]


class Transport(Protocol):
    description: str  # for logs: "outbox" or "smtp://host:port", never a password

    async def send(self, message: EmailMessage) -> None: ...


class OutboxTransport:
    """Writes each email as an `.eml` file into a directory, atomically: a reader sees whole files only."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.description = f"outbox {directory}"

    async def send(self, message: EmailMessage) -> None:
        await asyncio.to_thread(self._write, message.as_bytes())

    def _write(self, data: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns():020d}-{secrets.token_hex(4)}.eml"  # sorts in the order written
        fd, temp = tempfile.mkstemp(dir=self.directory, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(temp, self.directory / name)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise


class SmtpTransport:
    """Sends with aiosmtplib: STARTTLS (the default), implicit TLS, or plain (a local relay, tests)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        security: SmtpSecurity = "starttls",
        username: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
        ca_file: str | None = None,
    ) -> None:
        self.host = host
        self.ca_file = ca_file  # trust this CA bundle for the server's certificate (a bank's own CA), not the system's
        self.port = port
        self.security = security
        self.username = username or None
        self._password = password or None
        self.timeout = timeout
        self.description = f"smtp://{host}:{port}"

    async def send(self, message: EmailMessage) -> None:
        await aiosmtplib.send(  # the envelope sender and recipients come from the From and To headers
            message,
            hostname=self.host,
            port=self.port,
            username=self.username,
            password=self._password if self.username else None,
            use_tls=self.security == "tls",
            start_tls=self.security == "starttls",
            timeout=self.timeout,
            cert_bundle=self.ca_file,  # certificates are always checked: against this bundle, or the system's CAs
        )
