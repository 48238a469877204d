"""BM25 ranking over passages with several weighted fields (BM25F).

Each field's term frequency is normalised by that field's length, the weighted frequencies are added, and the sum
is saturated once — so a word in a passage's title counts more than the same word in its text, without a long
title or text winning by length. No third-party ranker: this is the whole algorithm, and it stays small and typed.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    weight: float
    b: float  # how much the field's length normalises its term frequencies (0: not at all, 1: fully)


class Bm25Index:
    """Scores documents made of named fields of terms against a bag of query terms."""

    def __init__(self, fields: Sequence[Field], documents: Sequence[Mapping[str, Sequence[str]]], *, k1: float = 1.2):
        self._fields = tuple(fields)
        self.k1 = k1
        self._size = len(documents)
        self._lengths = [[len(doc.get(f.name, ())) for f in self._fields] for doc in documents]
        self._average = [
            max(1e-9, sum(lengths[i] for lengths in self._lengths) / max(1, self._size))
            for i in range(len(self._fields))
        ]
        # term -> [(document, [tf per field])]
        self._postings: dict[str, list[tuple[int, list[int]]]] = {}
        for number, doc in enumerate(documents):
            counts = [Counter(doc.get(f.name, ())) for f in self._fields]
            for term in set().union(*counts):
                self._postings.setdefault(term, []).append((number, [c[term] for c in counts]))

    def __len__(self) -> int:
        return self._size

    def document_frequency(self, term: str) -> int:
        return len(self._postings.get(term, ()))

    def idf(self, term: str) -> float:
        """Inverse document frequency, never negative (BM25's `+1` variant); highest for unseen terms."""
        df = self.document_frequency(term)
        return math.log(1 + (self._size - df + 0.5) / (df + 0.5))

    def scores(self, query_terms: Iterable[str]) -> list[float]:
        """A score for every document, in document order; each distinct query term counts once."""
        totals = [0.0] * self._size
        for term in set(query_terms):
            postings = self._postings.get(term)
            if not postings:
                continue
            idf = self.idf(term)
            for number, tfs in postings:
                lengths = self._lengths[number]
                weighted = sum(
                    f.weight * tf / (1 - f.b + f.b * lengths[i] / self._average[i])
                    for i, (f, tf) in enumerate(zip(self._fields, tfs, strict=True))
                    if tf
                )
                totals[number] += idf * weighted * (self.k1 + 1) / (self.k1 + weighted)
        return totals
