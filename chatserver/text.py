"""What text people may send: something visible, and nothing that hides, fakes or breaks what others see."""

from __future__ import annotations

import unicodedata

# Characters that show nothing although Unicode files them as letters or symbols: fillers and blanks.
_BLANKS = frozenset("\u2800\u3164\u115f\u1160\uffa0\u180e\u17b4\u17b5")
# Direction embeddings, overrides and isolates: they can make text read differently from what it says.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_LINE_CONTROLS = frozenset("\t\n\r")


def visible(ch: str) -> bool:
    """A letter, digit, punctuation mark or symbol that shows: not a space, mark, format or unassigned code point."""
    return unicodedata.category(ch)[0] in "LNPS" and ch not in _BLANKS


def has_visible(text: str) -> bool:
    return any(visible(ch) for ch in text)


# An email address as people type one: no spaces, brackets, quotes or separators; a domain with a dot. (No
# look-arounds: pydantic checks patterns with Rust's regex.) Length is checked apart: EMAIL_MAX_LENGTH.
EMAIL_MAX_LENGTH = 254
EMAIL_PATTERN = (
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)


def unsafe_character(text: str, *, multiline: bool) -> str | None:
    """Why the text may not be stored as it is, or None: control characters (a message may hold tabs and
    line breaks, a name none — nor the Unicode line and paragraph separators, which break email headers and
    one-line views alike), and direction overrides."""
    for ch in text:
        category = unicodedata.category(ch)
        if category == "Cc" and not (multiline and ch in _LINE_CONTROLS):
            return "control characters are not allowed"
        if category in ("Zl", "Zp") and not multiline:
            return "line breaks are not allowed"
        if ch in _BIDI_CONTROLS:
            return "direction override characters are not allowed"
    return None
