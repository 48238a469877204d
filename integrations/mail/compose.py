"""One email: multipart/alternative (text, then HTML), UTF-8 everywhere, and headers that stop auto-replies.

Headers are encoded by the stdlib (RFC 2047 for Chinese subjects and names). A CR or LF in any value that becomes
a header is refused with `HeaderInjection` before anything is built: the stdlib's `email.policy` refuses them too,
but with a message that does not say which header, and a check of our own does not depend on its version.
"""

from __future__ import annotations

import email.policy
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

# RFC 3834: a machine sent this; Exchange and Outlook: no out-of-office or other automatic answers; the rest: bulk.
AUTO_REPLY_HEADERS = {
    "Auto-Submitted": "auto-generated",
    "X-Auto-Response-Suppress": "All",
    "Precedence": "bulk",
}
_LINE_BREAKS = frozenset("\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029")


class HeaderInjection(ValueError):
    """A value that would become a header holds a line break."""


def check_header(field: str, value: str) -> str:
    """`value` if it can stand in a header; HeaderInjection naming the field otherwise."""
    if any(char in _LINE_BREAKS for char in value):
        raise HeaderInjection(f"{field}: a line break (CR or LF) cannot be part of an email header")
    return value


def _address(field: str, name: str, addr: str) -> Address:
    check_header(f"{field} name", name)
    check_header(f"{field} address", addr)
    try:
        return Address(display_name=name, addr_spec=addr)
    except (ValueError, IndexError) as exc:  # the stdlib's parser raises IndexError for some malformed addresses
        raise ValueError(f"{field}: not an email address") from exc


def compose(
    *,
    from_name: str,
    from_addr: str,
    to_name: str,
    to_addr: str,
    subject: str,
    text: str,
    html: str,
    now: datetime,
    headers: dict[str, str] | None = None,
) -> EmailMessage:
    """The message, ready to send. `html` must already be escaped (templates.py does it); `headers` adds more."""
    check_header("Subject", subject)
    for name, value in (headers or {}).items():
        check_header(name, name)
        check_header(name, value)
    sender = _address("From", from_name, from_addr)
    recipient = _address("To", to_name, to_addr)
    message = EmailMessage(policy=email.policy.SMTP)
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = subject
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid(domain=sender.domain or None)
    for name, value in {**AUTO_REPLY_HEADERS, **(headers or {})}.items():
        message[name] = value
    # base64: 7-bit safe for any server (no 8BITMIME needed), and compact for Chinese text.
    message.set_content(text, subtype="plain", charset="utf-8", cte="base64")
    message.add_alternative(html, subtype="html", charset="utf-8", cte="base64")
    return message
