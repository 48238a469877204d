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


def unsafe_character(text: str, *, multiline: bool) -> str | None:
    """Why the text may not be stored as it is, or None: control characters (a message may hold tabs and
    line breaks, a name none), and direction overrides."""
    for ch in text:
        if unicodedata.category(ch) == "Cc" and not (multiline and ch in _LINE_CONTROLS):
            return "control characters are not allowed"
        if ch in _BIDI_CONTROLS:
            return "direction override characters are not allowed"
    return None
