"""Signed webhooks from outside systems (the service platform; later the ticket system).

Headers: `X-Timestamp` (Unix seconds), `X-Delivery-Id` (unique per delivery) and
`X-Signature: sha256=<hex>`, where hex is HMAC-SHA256 over `"{timestamp}.{raw body}"` with the shared secret.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

from .errors import Unauthorized

MAX_SKEW_SECONDS = 300


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def signed_headers(secret: str, body: bytes, delivery_id: str, *, now: float | None = None) -> dict[str, str]:
    timestamp = str(int(now if now is not None else time.time()))
    return {
        "Content-Type": "application/json",
        "X-Timestamp": timestamp,
        "X-Delivery-Id": delivery_id,
        "X-Signature": signature(secret, timestamp, body),
    }


def verify(secret: str | None, headers: Mapping[str, str], body: bytes, *, now: float | None = None) -> str:
    """The delivery id of a correctly signed, fresh request; Unauthorized for anything else.

    `headers` should look names up without regard to case, as HTTP does (aiohttp's `request.headers`)."""
    if not secret:
        raise Unauthorized("signed requests are not accepted: no shared secret is configured")
    timestamp = headers.get("X-Timestamp", "")
    delivery_id = headers.get("X-Delivery-Id", "")
    given = headers.get("X-Signature", "")
    if not timestamp or not delivery_id or not given:
        raise Unauthorized("X-Timestamp, X-Delivery-Id and X-Signature are required")
    # ASCII digits only, and few of them: str.isdigit() also takes "²" and int() refuses over 4300 digits.
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 15):
        raise Unauthorized("X-Timestamp must be Unix seconds")
    if abs(int(timestamp) - (now if now is not None else time.time())) > MAX_SKEW_SECONDS:
        raise Unauthorized("the request's timestamp is more than 5 minutes off")
    if len(delivery_id) > 128:
        raise Unauthorized("X-Delivery-Id is too long")
    # surrogateescape: a header with bytes that are not UTF-8 is just a wrong signature, not a server error.
    if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"), signature(secret, timestamp, body).encode()):
        raise Unauthorized("the signature does not match")
    return delivery_id
