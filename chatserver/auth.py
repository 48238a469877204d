"""Tokens (JWT, pinned algorithm, required claims) and passwords (argon2)."""

from __future__ import annotations

import asyncio
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from .errors import Unauthorized
from .settings import Settings

_REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub"]


def load_or_create_secret(data_dir: Path, name: str = "jwt_secret") -> str:
    """A secret kept in `<data_dir>/<name>` (the token signing secret by default), created owner-only on first use."""
    path = data_dir / name
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        os.chmod(path, 0o600)
        secret = path.read_text().strip()
        if len(secret) < 32:
            raise RuntimeError(f"{path} holds a secret shorter than 32 characters") from None
        return secret
    secret = secrets.token_urlsafe(48)
    with os.fdopen(fd, "w") as fh:
        fh.write(secret)
    return secret


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    user_id: str
    issued_at: float  # Unix seconds
    expires_at: int


class Tokens:
    def __init__(self, settings: Settings, secret: str) -> None:
        self._secret = secret
        self._algorithm = settings.jwt_algorithm
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._ttl = timedelta(seconds=settings.token_ttl_seconds)

    def issue(self, user_id: str, *, now: datetime | None = None) -> str:
        issued = now or datetime.now(UTC)
        claims = {
            "sub": user_id,
            "iat": round(issued.timestamp(), 6),  # a NumericDate may be fractional: revocation is exact
            "exp": issued + self._ttl,
            "iss": self._issuer,
            "aud": self._audience,
        }
        return jwt.encode(claims, self._secret, algorithm=self._algorithm)

    def verify(self, token: object) -> VerifiedToken:
        """Who the token names and when it was issued and expires; Unauthorized for anything else."""
        if not isinstance(token, str) or not token or len(token) > 4096:
            raise Unauthorized("a valid token is required")
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[self._algorithm],
                audience=self._audience,
                issuer=self._issuer,
                options={"require": _REQUIRED_CLAIMS},
                leeway=5,
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("the token has expired") from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized("the token is not valid") from exc
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise Unauthorized("the token is not valid")
        return VerifiedToken(user_id=subject, issued_at=float(claims["iat"]), expires_at=int(claims["exp"]))


class Passwords:
    """argon2id hashing, run off the event loop (a hash costs tens of milliseconds on purpose)."""

    def __init__(self) -> None:
        self._hasher = PasswordHasher()
        # Verified against when the user does not exist, so both paths cost the same.
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        def check() -> bool:
            try:
                return self._hasher.verify(password_hash or self._dummy_hash, password) and password_hash is not None
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False

        return await asyncio.to_thread(check)
