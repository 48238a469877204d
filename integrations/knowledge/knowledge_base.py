"""The knowledge base the AI advisor answers from: load once, then search and decide in a few milliseconds."""

from __future__ import annotations

from pathlib import Path

from integrations.knowledge.decision import Decision, DecisionPolicy, Hit, Ranking, asks_about_pricing, decide
from integrations.knowledge.loading import Passage, load_passages, read_synonyms, read_user_dictionary
from integrations.knowledge.ranking import Bm25Index, Field
from integrations.knowledge.segmentation import Segmenter

# A word in a passage's title counts three times one in its text; the document's title, shared by all its
# passages, tells documents apart a little.
FIELDS = (Field("title", 3.0, 0.5), Field("document", 0.5, 0.0), Field("text", 1.0, 0.75))


class KnowledgeBase:
    """Passages with their index. Immutable once loaded; safe to share between bots and rooms."""

    def __init__(self, passages: list[Passage], segmenter: Segmenter, policy: DecisionPolicy) -> None:
        self._passages = tuple(passages)
        self._by_id = {p.id: p for p in passages}
        self._segmenter = segmenter
        self._policy = policy
        self._index = Bm25Index(
            FIELDS,
            [
                {
                    "title": segmenter.terms(p.title),
                    "document": segmenter.terms(p.document_title),
                    "text": segmenter.terms(p.text),
                }
                for p in passages
            ],
        )

    @classmethod
    def load(cls, folder: Path, *, policy: DecisionPolicy | None = None) -> KnowledgeBase:
        """Read the folder (see config/knowledge/README.md) and index it; writes nothing anywhere.

        Takes a second or two (mostly jieba's dictionary): load once at start-up, off the event loop
        (`await asyncio.to_thread(KnowledgeBase.load, folder)`). Raises KnowledgeBaseError naming the file and line
        when the folder cannot be used.
        """
        passages = load_passages(folder)
        segmenter = Segmenter(read_user_dictionary(folder), read_synonyms(folder))
        return cls(passages, segmenter, policy or DecisionPolicy())

    @property
    def passages(self) -> tuple[Passage, ...]:
        return self._passages

    @property
    def policy(self) -> DecisionPolicy:
        """When `answer` answers; calibrated defaults unless `load` was given another."""
        return self._policy

    def passage(self, passage_id: str) -> Passage:
        """The passage with that id; KeyError if there is none."""
        return self._by_id[passage_id]

    def __contains__(self, passage_id: object) -> bool:
        return passage_id in self._by_id

    def terms(self, text: str) -> list[str]:
        """The index terms of `text` (what the ranking sees), for debugging and tests."""
        return self._segmenter.terms(text)

    def search(self, question: str, k: int = 3) -> list[Hit]:
        """The `k` best-matching passages, best first; passages sharing no word with the question are left out."""
        return self._ranked(self._segmenter.terms(question))[:k]

    def answer(self, question: str, *, policy: DecisionPolicy | None = None) -> Decision:
        """Answer with the best passage (or the best two), or hand off; `Decision.reason` says which and why."""
        return decide(self.rank(question), policy or self._policy)

    def rank(self, question: str) -> Ranking:
        """Everything `answer` decides on (the evaluation calibrates policies on it without searching again)."""
        terms = self._segmenter.terms(question)
        return Ranking(
            hits=tuple(self._ranked(terms)[:3]),
            best_possible=self._best_possible(terms),
            pricing=asks_about_pricing(question),
        )

    def _ranked(self, terms: list[str]) -> list[Hit]:
        scores = self._index.scores(terms)
        order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
        return [Hit(self._passages[i], scores[i]) for i in order if scores[i] > 0]

    def _best_possible(self, terms: list[str]) -> float:
        """What a passage could score at most: every distinct word of the question, known or not, fully matched.

        A telling word that no passage has (a product the documents never mention) stays in this sum, so the best
        passage's share of it is small and the advisor hands such a question off.
        """
        return sum(self._index.idf(t) for t in set(terms)) * (self._index.k1 + 1)
