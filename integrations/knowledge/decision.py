"""Whether the advisor answers, with one passage or two, or hands the question to a colleague.

A wrong answer costs a client more than a colleague's reply a little later, so the advisor answers only when
- the best passage scores high enough and clearly beats the runner-up (one passage), or
- the best two both score high enough, are too close to choose between, and together clearly beat the third (both
  passages: a question such as 证书快过期了怎么续期 is answered by the renewal procedure and by the expiry error
  alike), or
- the best passage scores somewhat lower but is far ahead of the runner-up (one passage, "dominant").
The thresholds are calibrated on config/kb-eval.jsonl (see `DecisionPolicy`).
Questions about fees, prices and rates are never answered from retrieval, whatever matches: the advisor must not state
figures the bank has not put in the knowledge base.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

from integrations.knowledge.loading import Passage


class Reason(StrEnum):
    ANSWERED = "answered"  # one passage, good enough and clearly ahead of the second
    ANSWERED_DOMINANT = "answered_dominant"  # one passage, a little less good but far ahead of the second
    ANSWERED_PAIR = "answered_pair"  # two passages, both good, too close to choose, clearly ahead of the third
    PRICING = "pricing"  # fees, prices, interest or exchange rates: always a colleague's
    EMPTY = "empty"  # nothing to search for (empty, or only stop-words)
    NO_MATCH = "no_match"  # no passage shares a word with the question
    LOW_SCORE = "low_score"  # the best passage is not good enough
    AMBIGUOUS = "ambiguous"  # the best passage does not clearly beat the second


@dataclass(frozen=True, slots=True)
class Hit:
    passage: Passage
    score: float


@dataclass(frozen=True, slots=True)
class Decision:
    """`answers` are the passages to answer with (one, or two for a pair), or none: hand the question to a colleague
    (`reason` says why)."""

    answers: tuple[Passage, ...]
    hits: tuple[Hit, ...]  # best first, whatever was decided
    reason: Reason

    @property
    def answer(self) -> Passage | None:
        """The best passage answered with, or None when the question is handed off."""
        return self.answers[0] if self.answers else None

    @property
    def handed_off(self) -> bool:
        return not self.answers


@dataclass(frozen=True, slots=True)
class Ranking:
    """What the decision looks at: the best hits, the most the question could score, and the pricing rule."""

    hits: tuple[Hit, ...]  # best first, only passages that share a word with the question
    best_possible: float  # what a passage matching every distinct word of the question fully would score
    pricing: bool  # the question asks about fees, prices or rates


@dataclass(frozen=True, slots=True)
class DecisionPolicy:
    """When to answer. The defaults are calibrated on config/kb-eval.jsonl (`run.py kb-eval FILE --calibrate`).

    `min_score`: the best passage's score as a share of `Ranking.best_possible` (0–1): how much of the question,
    weighted by how telling each word is, the passage covers. A question about something the documents never
    mention keeps its unknown words and so scores low.
    `min_margin`: how far the best passage must be ahead of the second, as a share of the best's score (0–1).
    `pairs`: when the best two are closer than `min_margin`, both reach `min_score`, and the second is ahead of the
    third by `min_margin` (the pair beats the rest as clearly as a single answer must beat the second), answer with
    both instead of handing off.
    `dominant_score`, `dominant_ratio`: a best passage below `min_score` still answers when it reaches
    `dominant_score` and scores at least `dominant_ratio` times the second (`dominant_score` 1.0: never). A passage
    with no runner-up at all (the only one sharing a word with the question) is not "far ahead" of anything: it needs
    `min_score`.
    """

    min_score: float = 0.26
    min_margin: float = 0.04
    pairs: bool = True
    dominant_score: float = 0.12
    dominant_ratio: float = 1.6


# Fees, prices, interest and exchange rates, in simplified and traditional characters and in English. Matched
# against the question as written (full-width forms folded, lower case).
_PRICING = re.compile(
    "|".join(
        [
            r"[费費]",  # 手续费 服务费 年费 工本费 费用 费率 收费 免费 …
            r"利率|利息|息率|汇率|匯率|收益率|年化",
            r"价格|價格|价钱|價錢|报价|報價|定价|定價|多少钱|多少錢|几块钱|幾塊錢|优惠|優惠|折扣",
            # paying in other words: 交钱 要钱 花钱 付费 收钱; "expensive?" (贵 alone is also the polite 贵公司)
            r"[交要花收付][钱錢]|付[费費]|[贵貴]不[贵貴]|[贵貴][吗嗎]|多[贵貴]|太[贵貴]|很[贵貴]|便宜",
            r"\b(?:fees?|pric(?:e|es|ed|ing)|costs?|charged|tariffs?|commissions?)\b",
            r"(?<!in )\bcharges?\b",  # not "who is in charge"
            r"\b(?:interest|exchange\s+rates?|fx\s+rates?|how\s+much)\b",
        ]
    )
)


def asks_about_pricing(question: str) -> bool:
    """True when the question asks about fees, prices or rates (which the advisor never answers)."""
    return _PRICING.search(unicodedata.normalize("NFKC", question).lower()) is not None


def decide(ranking: Ranking, policy: DecisionPolicy) -> Decision:
    """Answer with the best hit (or the best two), or hand off and say why."""
    hits = ranking.hits
    if ranking.pricing:
        return Decision((), hits, Reason.PRICING)
    if ranking.best_possible <= 0:
        return Decision((), hits, Reason.EMPTY)
    if not hits:
        return Decision((), hits, Reason.NO_MATCH)
    best, second, third = (hits[i].score if len(hits) > i else 0.0 for i in range(3))
    share = best / ranking.best_possible
    if share < policy.min_score:
        if second > 0 and share >= policy.dominant_score and best >= policy.dominant_ratio * second:
            return Decision((hits[0].passage,), hits, Reason.ANSWERED_DOMINANT)
        return Decision((), hits, Reason.LOW_SCORE)
    if (best - second) / best >= policy.min_margin:
        return Decision((hits[0].passage,), hits, Reason.ANSWERED)
    if (
        policy.pairs
        and second > 0
        and second / ranking.best_possible >= policy.min_score
        and (second - third) / second >= policy.min_margin
    ):
        return Decision((hits[0].passage, hits[1].passage), hits, Reason.ANSWERED_PAIR)
    return Decision((), hits, Reason.AMBIGUOUS)
