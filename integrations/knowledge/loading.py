"""Reading the knowledge base folder: Markdown documents into passages, and the word lists beside them.

A document is one Markdown file: its first heading `# 文档标题` is the document's title, and every
`## 段落标题 {#passage-id}` starts a passage that runs to the next `##` heading. The folder's README.md describes
the folder and is not read. See config/knowledge/README.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

USER_DICTIONARY = "userdict.txt"
SYNONYMS = "synonyms.txt"

_ID = r"[a-z0-9][a-z0-9-]*"
_H1 = re.compile(r"^#\s+(?P<title>\S.*?)\s*$")
_H2 = re.compile(r"^##\s+(?P<title>\S.*?)\s*$")
_H2_WITH_ID = re.compile(rf"^##\s+(?P<title>\S.*?)\s*\{{#(?P<id>{_ID})\}}\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


class KnowledgeBaseError(Exception):
    """The knowledge base folder or one of its files cannot be used; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class Passage:
    """One answerable passage: what the advisor quotes, and where it comes from."""

    id: str  # stable: the evaluation file, logs and answers refer to it
    title: str
    document: str  # the file, relative to the knowledge base folder, e.g. "certificates.md"
    document_title: str
    text: str  # Markdown as written, without the heading

    @property
    def source(self) -> str:
        """How an answer cites the passage, e.g. `证书与密钥 › 证书更新流程`."""
        return f"{self.document_title} › {self.title}"


def load_passages(folder: Path) -> list[Passage]:
    """Every passage of every `*.md` file in `folder` (not recursive), in file and then document order."""
    if not folder.is_dir():
        raise KnowledgeBaseError(f"{folder}: not a folder")
    passages: list[Passage] = []
    seen: dict[str, str] = {}
    files = sorted(p for p in folder.glob("*.md") if p.name.lower() != "readme.md")
    for path in files:
        for passage, line in _parse_document(path, path.name):
            if passage.id in seen:
                raise KnowledgeBaseError(
                    f"{path}:{line}: passage id {passage.id!r} is already used in {seen[passage.id]}"
                )
            seen[passage.id] = path.name
            passages.append(passage)
    if not passages:
        raise KnowledgeBaseError(f"{folder}: no passages (no `## title {{#id}}` headings in any *.md file)")
    return passages


def _parse_document(path: Path, name: str) -> list[tuple[Passage, int]]:
    lines = _read(path).splitlines()
    document_title: str | None = None
    found: list[tuple[Passage, int]] = []
    current: tuple[str, str, int] | None = None  # (id, title, line of the heading)
    body: list[str] = []
    in_code = False

    def close() -> None:
        if current is None:
            return
        text = "\n".join(body).strip()
        if not text:
            raise KnowledgeBaseError(f"{path}:{current[2]}: passage {current[0]!r} has no text")
        assert document_title is not None
        found.append((Passage(current[0], current[1], name, document_title, text), current[2]))

    for number, line in enumerate(lines, start=1):
        if _FENCE.match(line):
            in_code = not in_code
        elif not in_code and (h1 := _H1.match(line)):
            if document_title is not None:
                raise KnowledgeBaseError(f"{path}:{number}: a second `# title`; one document per file")
            document_title = h1["title"]
            continue
        elif not in_code and _H2.match(line):
            heading = _H2_WITH_ID.match(line)
            if heading is None:
                raise KnowledgeBaseError(
                    f"{path}:{number}: heading without an id; write it as `## {line[2:].strip()} {{#some-id}}`"
                )
            if document_title is None:
                raise KnowledgeBaseError(f"{path}:{number}: a passage before the document's `# title`")
            close()
            current, body = (heading["id"], heading["title"], number), []
            continue
        if current is not None:
            body.append(line)
    if in_code:
        raise KnowledgeBaseError(f"{path}: a code block is not closed")
    if document_title is None:
        raise KnowledgeBaseError(f"{path}: no `# title` heading")
    close()
    return found


def read_user_dictionary(folder: Path) -> list[tuple[str, int | None, str | None]]:
    """(word, frequency or None, part of speech or None) from `userdict.txt`, if the folder has one."""
    path = folder / USER_DICTIONARY
    if not path.exists():
        return []
    entries: list[tuple[str, int | None, str | None]] = []
    for number, parts in _word_lines(path):
        word, rest = parts[0], parts[1:]
        freq = int(rest.pop(0)) if rest and rest[0].isdigit() else None
        if len(rest) > 1 or (rest and not rest[0].isalpha()):
            raise KnowledgeBaseError(f"{path}:{number}: expected `word [frequency] [part-of-speech]`")
        entries.append((word, freq, rest[0] if rest else None))
    return entries


def read_synonyms(folder: Path) -> list[list[str]]:
    """Groups of words that mean the same here, canonical word first, from `synonyms.txt`, if the folder has one."""
    path = folder / SYNONYMS
    if not path.exists():
        return []
    groups: list[list[str]] = []
    for number, parts in _word_lines(path):
        if len(parts) < 2:
            raise KnowledgeBaseError(f"{path}:{number}: a synonym group needs at least two words")
        groups.append(parts)
    return groups


def _word_lines(path: Path) -> list[tuple[int, list[str]]]:
    """Non-empty lines split on white space, without `#` comments, with their line numbers."""
    out = []
    for number, line in enumerate(_read(path).splitlines(), start=1):
        parts = line.split("#", 1)[0].split()
        if parts:
            out.append((number, parts))
    return out


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise KnowledgeBaseError(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise KnowledgeBaseError(f"{path}: cannot read: {exc.strerror or exc}") from exc
