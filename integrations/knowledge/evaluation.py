"""Scoring the knowledge base on questions with known answers, and calibrating when it answers (`run.py kb-eval`).

The evaluation file is JSON Lines, one question per line:

    {"question": "证书快到期了怎么续期", "expected": "cert-renewal", "split": "calibration"}
    {"question": "生产证书审核要几天", "expected": ["cert-apply", "prod-cert-differences"]}
    {"question": "跨行转账手续费怎么算", "expected": null}

`expected` is the passage id (or ids, any of which is right) that answers the question, or null when the advisor
should hand the question off. `split` is optional; the shipped file calibrates the policy on "calibration" and
reports "heldout" to show that the calibration did not just learn its own questions.

A two-passage answer (`Reason.ANSWERED_PAIR`) counts as right when either of its passages is an expected one: the
client reads both, each with its source. The report says how many answers were pairs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from integrations.knowledge.decision import DecisionPolicy, Ranking, Reason, decide
from integrations.knowledge.knowledge_base import KnowledgeBase

CALIBRATION_SPLIT = "calibration"
_KEYS = {"question", "expected", "split"}


class EvalFileError(Exception):
    """The evaluation file cannot be used; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class EvalCase:
    question: str
    expected: frozenset[str]  # empty: the advisor should hand the question off
    split: str | None
    line: int


@dataclass(frozen=True, slots=True)
class Scores:
    """One split's scores. Rates are None when there is nothing to divide by."""

    questions: int
    answerable: int
    hit_at_1: float | None  # the expected passage ranks first (answerable questions)
    hit_at_3: float | None  # ... among the first three
    answered_right: int  # answerable, answered with an expected passage (for a pair: either of the two)
    answered_wrong: int  # answerable, answered with another passage (for a pair: neither is expected)
    should_hand_off: int
    handed_off_right: int  # should hand off, and did
    answered_instead: int  # should hand off, and answered: the worst outcome
    hand_off_rate: float | None  # share of all questions handed off
    pairs: int = 0  # answers with two passages (right or wrong, any question)
    dominant: int = 0  # answers by the dominance rule (right or wrong, any question)

    @property
    def answerable_hand_off_rate(self) -> float | None:
        """Share of the answerable questions handed off."""
        if not self.answerable:
            return None
        return (self.answerable - self.answered_right - self.answered_wrong) / self.answerable

    @property
    def wrong_answers(self) -> int:
        return self.answered_wrong + self.answered_instead

    @property
    def precision(self) -> float | None:
        """Of the questions answered, the share answered right."""
        answered = self.answered_right + self.wrong_answers
        return self.answered_right / answered if answered else None


def load_cases(path: Path) -> list[EvalCase]:
    """Read an evaluation file; EvalFileError names the line of the first problem."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise EvalFileError(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise EvalFileError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    cases = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            cases.append(_case(path, number, line))
    if not cases:
        raise EvalFileError(f"{path}: no questions (expected one JSON object per line)")
    return cases


def _case(path: Path, number: int, line: str) -> EvalCase:
    where = f"{path}:{number}"
    try:
        row = json.loads(line)
    except ValueError as exc:
        raise EvalFileError(f"{where}: not JSON: {exc}") from exc
    if not isinstance(row, dict):
        raise EvalFileError(f"{where}: expected a JSON object with question, expected and split")
    if unknown := sorted(set(row) - _KEYS):
        raise EvalFileError(f"{where}: unknown key {unknown[0]!r} (keys: question, expected, split)")
    question = row.get("question")
    if not isinstance(question, str) or not question.strip():
        raise EvalFileError(f"{where}: question must be a non-empty string")
    if "expected" not in row:
        raise EvalFileError(f"{where}: expected is missing (a passage id, a list of ids, or null to hand off)")
    expected = row["expected"]
    if expected is None:
        ids: list[str] = []
    elif isinstance(expected, str) and expected:
        ids = [expected]
    elif isinstance(expected, list) and expected and all(isinstance(i, str) and i for i in expected):
        ids = expected
    else:
        raise EvalFileError(f"{where}: expected must be a passage id, a non-empty list of ids, or null")
    split = row.get("split")
    if split is not None and (not isinstance(split, str) or not split):
        raise EvalFileError(f"{where}: split must be a non-empty string")
    return EvalCase(question, frozenset(ids), split, number)


def check_ids(cases: Iterable[EvalCase], kb: KnowledgeBase, path: Path) -> None:
    """EvalFileError for the first expected passage id the knowledge base does not have."""
    for case in cases:
        for passage_id in sorted(case.expected):
            if passage_id not in kb:
                raise EvalFileError(f"{path}:{case.line}: no passage with id {passage_id!r} in the knowledge base")


def rank_all(kb: KnowledgeBase, cases: Sequence[EvalCase]) -> list[Ranking]:
    return [kb.rank(case.question) for case in cases]


def score(cases: Sequence[EvalCase], rankings: Sequence[Ranking], policy: DecisionPolicy) -> Scores:
    answerable = [(c, r) for c, r in zip(cases, rankings, strict=True) if c.expected]
    negatives = [(c, r) for c, r in zip(cases, rankings, strict=True) if not c.expected]
    top1 = top3 = right = wrong = handed_off = neg_handed_off = pairs = dominant = 0
    for case, ranking in answerable:
        ids = [hit.passage.id for hit in ranking.hits]
        top1 += bool(ids[:1] and ids[0] in case.expected)
        top3 += any(i in case.expected for i in ids[:3])
        decision = decide(ranking, policy)
        pairs += decision.reason is Reason.ANSWERED_PAIR
        dominant += decision.reason is Reason.ANSWERED_DOMINANT
        if decision.handed_off:
            handed_off += 1
        elif any(p.id in case.expected for p in decision.answers):
            right += 1
        else:
            wrong += 1
    for _, ranking in negatives:
        decision = decide(ranking, policy)
        pairs += decision.reason is Reason.ANSWERED_PAIR
        dominant += decision.reason is Reason.ANSWERED_DOMINANT
        neg_handed_off += decision.handed_off
    total = len(cases)
    return Scores(
        questions=total,
        answerable=len(answerable),
        hit_at_1=top1 / len(answerable) if answerable else None,
        hit_at_3=top3 / len(answerable) if answerable else None,
        answered_right=right,
        answered_wrong=wrong,
        should_hand_off=len(negatives),
        handed_off_right=neg_handed_off,
        answered_instead=len(negatives) - neg_handed_off,
        hand_off_rate=(handed_off + neg_handed_off) / total if total else None,
        pairs=pairs,
        dominant=dominant,
    )


def evaluate(kb: KnowledgeBase, cases: Sequence[EvalCase], policy: DecisionPolicy | None = None) -> dict[str, Scores]:
    """Scores for all questions ("all") and for each split, under `policy` (default: the knowledge base's)."""
    rankings = rank_all(kb, cases)
    return report(cases, rankings, policy or kb.policy)


def report(cases: Sequence[EvalCase], rankings: Sequence[Ranking], policy: DecisionPolicy) -> dict[str, Scores]:
    """Like `evaluate`, on rankings already made."""
    scores = {"all": score(cases, rankings, policy)}
    for split in sorted({c.split for c in cases if c.split is not None}):
        chosen = [i for i, c in enumerate(cases) if c.split == split]
        scores[split] = score([cases[i] for i in chosen], [rankings[i] for i in chosen], policy)
    return scores


def calibrate(
    cases: Sequence[EvalCase], rankings: Sequence[Ranking], *, wrong_cost: float = 3.0, step: float = 0.02
) -> DecisionPolicy:
    """The policy that maximises right answers minus `wrong_cost` × wrong answers on these cases, in two stages.

    1. `min_score` and `min_margin` for single answers, as if there were no other rule (a pair, counted right when
       either passage is, would otherwise reward a wide margin that turns single answers into pairs). The pair rule
       reuses both: it has nothing of its own to calibrate.
    2. With those fixed, `dominant_score` (below `min_score`) and `dominant_ratio` (1.0 to 4.0 by 0.1): this stage
       only ever answers questions stage 1 hands off.

    Many policies usually tie; of those, the one deepest inside the region of best policies (farthest from any worse
    one on the grid) is chosen, so that a slightly different question does not tip it over. Of equally deep ones,
    stage 1 takes the lowest thresholds (as it always has); stage 2, which answers what would otherwise be handed
    off, the strictest.
    """
    size = round(0.6 / step) + 1
    grid = [round(i * step, 6) for i in range(size)]
    singles = DecisionPolicy(pairs=False, dominant_score=1.0, dominant_ratio=0.0)  # the old rules alone

    def single(s: float, m: float) -> DecisionPolicy:
        return replace(singles, min_score=s, min_margin=m)

    min_score, min_margin = _deepest(
        grid, grid, lambda s, m: _utility(cases, rankings, single(s, m), wrong_cost), strictest=False
    )
    base = DecisionPolicy(min_score=min_score, min_margin=min_margin, pairs=True, dominant_score=1.0)
    scores = [g for g in grid if g <= min_score]
    ratios = [round(1 + i / 10, 6) for i in range(31)]
    dominant_score, dominant_ratio = _deepest(
        scores,
        ratios,
        lambda s, r: _utility(cases, rankings, replace(base, dominant_score=s, dominant_ratio=r), wrong_cost),
        strictest=True,
    )
    if dominant_score >= min_score:  # the rule answers nothing more: leave it off
        return base
    return replace(base, dominant_score=dominant_score, dominant_ratio=dominant_ratio)


def _deepest(
    first: Sequence[float], second: Sequence[float], utility: Callable[[float, float], float], *, strictest: bool
) -> tuple[float, float]:
    """The grid point of best utility farthest (in grid steps) from any worse point; ties to the lowest values, or
    with `strictest` to the highest."""
    values = [[utility(a, b) for b in second] for a in first]
    best = max(max(row) for row in values)
    cells = [(i, j) for i in range(len(first)) for j in range(len(second))]
    optimal = [c for c in cells if values[c[0]][c[1]] == best]
    worse = [c for c in cells if values[c[0]][c[1]] < best]
    size = max(len(first), len(second))

    def depth(cell: tuple[int, int]) -> int:
        return min((max(abs(cell[0] - w[0]), abs(cell[1] - w[1])) for w in worse), default=size)

    sign = 1 if strictest else -1
    i, j = max(optimal, key=lambda cell: (depth(cell), sign * (cell[0] + cell[1])))
    return first[i], second[j]


def _utility(
    cases: Sequence[EvalCase], rankings: Sequence[Ranking], policy: DecisionPolicy, wrong_cost: float
) -> float:
    s = score(cases, rankings, policy)
    return s.answered_right - wrong_cost * s.wrong_answers


def format_report(report: dict[str, Scores], policy: DecisionPolicy) -> str:
    def rate(value: float | None) -> str:
        return "  -  " if value is None else f"{value:.3f}"

    dominance = (
        f"dominant_score={policy.dominant_score:.2f} dominant_ratio={policy.dominant_ratio:.1f}"
        if policy.dominant_score < policy.min_score
        else "no dominance rule"
    )
    lines = [
        f"policy: min_score={policy.min_score:.2f} min_margin={policy.min_margin:.2f} "
        f"pairs={'on' if policy.pairs else 'off'} {dominance}",
        "",
        f"{'split':<12} {'questions':>9} {'hit@1':>6} {'hit@3':>6} {'hand-off':>8} {'(answerable)':>12} "
        f"{'precision':>9}   {'answerable: right/wrong/handed off':<34}   {'should hand off: handed off/answered':<36}"
        f"   pairs  dominant",
    ]
    for name, s in report.items():
        answerable = f"{s.answered_right}/{s.answered_wrong}/{s.answerable - s.answered_right - s.answered_wrong}"
        negatives = f"{s.handed_off_right}/{s.answered_instead} of {s.should_hand_off}"
        lines.append(
            f"{name:<12} {s.questions:>9} {rate(s.hit_at_1):>6} {rate(s.hit_at_3):>6} {rate(s.hand_off_rate):>8} "
            f"{rate(s.answerable_hand_off_rate):>12} {rate(s.precision):>9}   {answerable + f' of {s.answerable}':<34}"
            f"   {negatives:<36}   {s.pairs:>5}  {s.dominant:>8}"
        )
    lines += [
        "",
        "precision: of the questions answered, the share answered right; a two-passage answer counts as right when",
        "either passage is an expected one. hand-off (answerable): the share of answerable questions handed off.",
    ]
    return "\n".join(lines)


def calibration_cases(cases: Sequence[EvalCase]) -> list[int]:
    """Indexes of the cases to calibrate on: the "calibration" split if the file has one, else all."""
    chosen = [i for i, c in enumerate(cases) if c.split == CALIBRATION_SPLIT]
    return chosen or list(range(len(cases)))


def run_evaluation(path: Path, folder: Path, *, recalibrate: bool = False) -> str:
    """`run.py kb-eval`: the report on the evaluation file `path` for the knowledge base in `folder`.

    With `recalibrate`, the policy is first calibrated on the file's calibration split and the report is under it.
    Raises EvalFileError or KnowledgeBaseError (the file is checked before the knowledge base is loaded).
    """
    cases = load_cases(path)
    kb = KnowledgeBase.load(folder)
    check_ids(cases, kb, path)
    rankings = rank_all(kb, cases)
    policy = kb.policy
    if recalibrate:
        chosen = calibration_cases(cases)
        policy = calibrate([cases[i] for i in chosen], [rankings[i] for i in chosen])
    header = f"{path}: {len(cases)} questions on {len(kb.passages)} passages in {folder}"
    return header + "\n" + format_report(report(cases, rankings, policy), policy)
