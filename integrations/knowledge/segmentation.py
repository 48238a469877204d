"""Turning Chinese (and English) text into index terms.

Text is normalised first — full-width forms to ASCII, lower case, traditional characters to simplified — so that a
question in 繁體字 finds the passage written in 简体字. jieba then cuts it into words (in search mode, which also
yields the shorter words inside long ones: 银企直连 → 银企, 直连, 银企直连), with a user dictionary of bank terms so
that 回单, 验签 or 白名单 stay whole. Stop-words go; synonyms become their canonical word.
"""

from __future__ import annotations

import logging
import re
import unicodedata
import warnings
from collections.abc import Iterable
from importlib import resources

import opencc

with warnings.catch_warnings():
    # jieba 0.42.1, its last release, imports pkg_resources (deprecated by newer setuptools) and, when its files
    # are compiled for the first time, has regular expressions with invalid escape sequences. Neither is ours to
    # fix, and neither matters; other modules' warnings are untouched.
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message="invalid escape sequence", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message="invalid escape sequence", category=SyntaxWarning)
    import jieba

# A user word without a frequency gets this one, about that of 证书 or 请求 in jieba's dictionary: enough to be cut
# out whole inside a sentence (请求头里 → 请求头 里, not 请求 头里), where jieba's own suggestion is not.
USER_WORD_FREQUENCY = 2000
_WORD = re.compile(r"\w")
# English plurals, crudely ("certificates" → "certificate", but also "status" → "statu"): questions and passages are
# cut the same way, so only the match counts.
_PLURAL = re.compile(r"^([a-z]{3,}[^s])s$")
# After conversion, 帳 becomes 帐 (帐户, 对帐单); the mainland's usual 账 is what the documents use.
_CHARACTERS = str.maketrans({"帐": "账"})


def _stop_words() -> frozenset[str]:
    text = resources.files(__package__).joinpath("stopwords.txt").read_text(encoding="utf-8")
    return frozenset(w for line in text.splitlines() for w in line.split("#", 1)[0].split())


class Segmenter:
    """Cuts text into index terms. Built once (loading jieba's dictionary takes a second); `terms` is then fast."""

    def __init__(
        self,
        user_words: Iterable[tuple[str, int | None, str | None]] = (),
        synonyms: Iterable[list[str]] = (),
    ) -> None:
        self._t2s = opencc.OpenCC("t2s")
        self._stop = frozenset(self.normalize(w) for w in _stop_words())
        self._tokenizer = _jieba_tokenizer()
        for word, freq, tag in user_words:
            self._add_word(self.normalize(word), freq, tag)
        self._canonical: dict[str, str] = {}
        for group in synonyms:
            words = [self.normalize(w) for w in group]
            for word in words:
                if _has_han(word):  # so that jieba cuts it out whole and it can be looked up
                    self._add_word(word)
                self._canonical[word] = words[0]

    def _add_word(self, word: str, freq: int | None = None, tag: str | None = None) -> None:
        if freq is None:  # never lower a common word's frequency
            freq = max(USER_WORD_FREQUENCY, self._tokenizer.FREQ.get(word, 0))
        self._tokenizer.add_word(word, freq, tag)

    def normalize(self, text: str) -> str:
        """Full-width to ASCII, lower case, traditional to simplified."""
        text = unicodedata.normalize("NFKC", text).lower()
        return str(self._t2s.convert(text)).translate(_CHARACTERS)

    def terms(self, text: str) -> list[str]:
        """Index terms of `text`, in order, with repeats."""
        out = []
        for word in self._tokenizer.cut_for_search(self.normalize(text)):
            if not _WORD.search(word) or word in self._stop:
                continue
            word = _PLURAL.sub(r"\1", word)
            word = self._canonical.get(word, word)
            if len(word) == 1 and _has_han(word):
                continue
            out.append(word)
        return out


def _has_han(word: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in word)


def _jieba_tokenizer() -> jieba.Tokenizer:
    """A tokenizer of our own (not jieba's global one) with jieba's dictionary, which ships inside the package.

    jieba's own `initialize` would also write the dictionary to a cache file in the system's temporary folder; reading
    that back is no faster here than building it (a second or so, most of it making the dictionary's half a million
    entries either way), so it is built in memory and nothing is written anywhere.
    """
    logger = logging.getLogger("jieba")
    # jieba logs at DEBUG through a stderr handler of its own; send its warnings through the application's logging.
    logger.setLevel(logging.WARNING)
    logger.removeHandler(jieba.log_console)
    tokenizer = jieba.Tokenizer()
    tokenizer.FREQ, tokenizer.total = tokenizer.gen_pfdict(tokenizer.get_dict_file())
    tokenizer.initialized = True
    return tokenizer
