"""Finding `@真实姓名` mentions in a message's text. Pure functions, no I/O.

A mention is `@` (or the full-width `＠` Chinese input methods type) followed by the real name of a member of the
room, exactly as written in the bank's records; names may hold spaces and Chinese characters. Where several names
fit at one `@` (李娜 and 李娜娜), the longest wins. The name must end the text or be followed by a character that
cannot continue a name (a space, punctuation): `@李娜你好` mentions nobody, `@李娜 你好` and `@李娜，你好` do. An
`@` right after an ASCII letter or digit (`qiao@huayue-energy.example`) starts no mention.
"""

from __future__ import annotations

from collections.abc import Iterable

_AT = frozenset("@＠")


def _continues_name(char: str) -> bool:
    return char.isalnum() or char in "_.-·"


def find_mentions(text: str, members: Iterable[tuple[str, str]]) -> list[str]:
    """The ids of the members `(user_id, name)` that `text` mentions, in the order first mentioned.

    Two members with the same name are both mentioned by it."""
    by_name: dict[str, list[str]] = {}
    for user_id, name in members:
        if name:
            by_name.setdefault(name, []).append(user_id)
    if not by_name or not any(at in text for at in _AT):
        return []
    names = sorted(by_name, key=len, reverse=True)  # the longest name that fits wins
    found: dict[str, None] = {}
    for index, char in enumerate(text):
        if char not in _AT or (index > 0 and text[index - 1].isascii() and text[index - 1].isalnum()):
            continue
        start = index + 1
        for name in names:
            end = start + len(name)
            if text.startswith(name, start) and (end == len(text) or not _continues_name(text[end])):
                found.update(dict.fromkeys(by_name[name]))
                break
    return list(found)
