"""Email out: composing safe multipart messages, and sending them to an outbox directory or an SMTP server.

- `compose.py`: one `EmailMessage` (text and HTML, UTF-8 headers, auto-reply suppression); refuses CR/LF in headers.
- `templates.py`: the mention digest and the invitation, as subject, text and HTML (everything interpolated escaped).
- `transport.py`: `Transport` and its two kinds: `OutboxTransport` (`.eml` files) and `SmtpTransport` (aiosmtplib).
- `mailer.py`: `Mailer`, what the server uses: a template, composed, handed to the transport.
"""

from .compose import HeaderInjection, compose
from .mailer import Mailer
from .templates import MentionItem
from .transport import OutboxTransport, SmtpTransport, Transport

__all__ = ["HeaderInjection", "Mailer", "MentionItem", "OutboxTransport", "SmtpTransport", "Transport", "compose"]
