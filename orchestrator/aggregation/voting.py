"""Self-consistency voting (Wang et al., arXiv 2203.11171) and its early-stop tests.

Rules we chose (the paper leaves them open):

- ``None`` answers (nothing extracted) abstain: they add no vote and no weight to ``total``.
- Ties go to the answer named first in ``tie_break``, then to the one that appeared first in
  ``answers``; so a vote is a pure function of its inputs. A vote says whether it was a tie
  (``tied``) and which rule picked the winner (``tie_rule``); ``break_tie`` re-picks among
  the tied answers by a score, e.g. their samples' mean log-probability.
- ``margin`` = (top - runner-up) / total: 1.0 when unanimous, 0.0 for a tie or no votes.
- Early stop: ``decisive_reason`` says which of two rules fired (see ``Decisive``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Literal

from orchestrator.types import VoteRecord

__all__ = [
    "Decisive",
    "TieBreak",
    "TieRule",
    "VoteResult",
    "break_tie",
    "cannot_be_overtaken",
    "decisive_reason",
    "is_decisive",
    "majority_vote",
    "margin_is_decisive",
    "vote_margin",
    "weighted_vote",
]


TieBreak = Literal["first", "mean_logprob"]
"""How a strategy breaks a tie at the top of its vote. ``first``, the default and the rule
from before ties were configurable: the answer of the model the plan lists first (weighted
votes), then the answer that appeared first. ``mean_logprob``: the tied answer whose samples
have the highest mean per-token log-probability, then ``first``."""


class TieRule(StrEnum):
    """The rule that picked the winner among answers tied at the top."""

    FIRST = "first"  # first to appear among the samples
    PLAN_ORDER = "plan_order"  # first in the ``tie_break`` order (the plan's models)
    MEAN_LOGPROB = "mean_logprob"  # highest score given to ``break_tie``


@dataclasses.dataclass(frozen=True)
class VoteResult:
    """Votes per answer (in order of first appearance), the winner and its margin.

    ``tied``: the answers sharing the top count, in the order the tie rules rank them (the
    winner first); empty when the winner stood alone. ``tie_rule``: the rule that decided.
    """

    winner: str | None
    counts: dict[str, float]
    total: float
    margin: float
    method: str
    tied: tuple[str, ...] = ()
    tie_rule: TieRule | None = None

    @property
    def is_tie(self) -> bool:
        """True when two or more answers shared the top count."""
        return len(self.tied) > 1

    def to_record(self, stopped_early: bool = False) -> VoteRecord:
        """The vote as the trace stores it."""
        return VoteRecord(
            method=self.method,
            counts=dict(self.counts),
            winner=self.winner,
            margin=self.margin,
            stopped_early=stopped_early,
            tie=self.is_tie,
            tie_break=None if self.tie_rule is None else str(self.tie_rule),
        )


def _top_two(counts: Mapping[str, float]) -> tuple[float, float]:
    values = sorted(counts.values(), reverse=True)
    return (values[0] if values else 0.0), (values[1] if len(values) > 1 else 0.0)


def vote_margin(counts: Mapping[str, float]) -> float:
    """(top - runner-up) / total, in [0, 1]; 0.0 when there are no votes."""
    total = math.fsum(counts.values())
    if total <= 0:
        return 0.0
    top, runner_up = _top_two(counts)
    return min(1.0, max(0.0, (top - runner_up) / total))


def _tally(
    answers: Sequence[str | None],
    weights: Sequence[float],
    method: str,
    tie_break: Sequence[str] | None,
) -> VoteResult:
    counts: dict[str, float] = {}
    for answer, weight in zip(answers, weights, strict=True):
        if answer is not None:
            counts[answer] = counts.get(answer, 0.0) + weight
    total = math.fsum(counts.values())
    if not math.isfinite(total):
        raise ValueError("the sum of the weights overflows to infinity")
    if total <= 0:
        return VoteResult(winner=None, counts=counts, total=total, margin=0.0, method=method)
    preferred = {a: i for i, a in reversed(list(enumerate(tie_break or ())))}
    order = {a: i for i, a in enumerate(counts)}  # dicts keep first-appearance order
    keys = {a: (-counts[a], preferred.get(a, len(preferred)), order[a]) for a in counts}
    ranked = sorted(counts, key=keys.__getitem__)
    tied = tuple(a for a in ranked if counts[a] == counts[ranked[0]])
    rule = None
    if len(tied) > 1:
        rule = TieRule.PLAN_ORDER if keys[tied[0]][1] != keys[tied[1]][1] else TieRule.FIRST
    return VoteResult(
        winner=ranked[0],
        counts=counts,
        total=total,
        margin=vote_margin(counts),
        method=method,
        tied=tied if rule else (),
        tie_rule=rule,
    )


def break_tie(result: VoteResult, scores: Mapping[str, float]) -> VoteResult:
    """``result`` with its tie re-picked: the tied answer with the highest score wins
    (``tie_rule`` MEAN_LOGPROB); answers without a score count -inf. Among answers whose
    best scores tie too, the vote's own order decides and its rule is recorded. No tie:
    ``result`` as is.

    >>> vote = majority_vote(["7", "8", "8", "7"])
    >>> vote.winner, vote.tied, str(vote.tie_rule)
    ('7', ('7', '8'), 'first')
    >>> picked = break_tie(vote, {"7": -0.9, "8": -0.2})
    >>> picked.winner, str(picked.tie_rule)
    ('8', 'mean_logprob')
    """
    for answer, score in scores.items():
        if math.isnan(score) or score == math.inf:
            raise ValueError(f"tie-break score for {answer!r} is {score!r}; need finite or -inf")
    if not result.is_tie:
        return result
    # A stable sort: answers with equal scores keep the order the vote's rules gave them.
    ranked = sorted(result.tied, key=lambda a: -scores.get(a, -math.inf))
    first, second = (scores.get(a, -math.inf) for a in ranked[:2])
    rule = result.tie_rule if first == second else TieRule.MEAN_LOGPROB
    return dataclasses.replace(result, winner=ranked[0], tied=tuple(ranked), tie_rule=rule)


def majority_vote(
    answers: Sequence[str | None], *, tie_break: Sequence[str] | None = None
) -> VoteResult:
    """The most frequent non-None answer.

    Ties go to the tied answer listed first in ``tie_break`` (if given), else to the tied
    answer that appears first in ``answers``. No non-None answer: winner None, margin 0.

    Example:
        >>> vote = majority_vote(["42", "41", None, "42"])
        >>> vote.winner, vote.counts, vote.total, round(vote.margin, 3)
        ('42', {'42': 2.0, '41': 1.0}, 3.0, 0.333)
        >>> majority_vote(["7", "8"]).winner  # a tie: first to appear wins
        '7'
        >>> majority_vote(["7", "8"], tie_break=["8"]).winner
        '8'
    """
    return _tally(answers, [1.0] * len(answers), "majority", tie_break)


def weighted_vote(
    answers: Sequence[str | None],
    weights: Sequence[float],
    *,
    tie_break: Sequence[str] | None = None,
) -> VoteResult:
    """The answer with the largest summed weight (e.g. verifier scores, router confidence).

    Weights must be finite, >= 0 and one per answer (ValueError otherwise). Ties and None
    answers as in ``majority_vote``; if every weight is 0, winner is None.

    >>> weighted_vote(["a", "b", "b"], [0.9, 0.2, 0.3]).winner
    'a'
    """
    if len(answers) != len(weights):
        raise ValueError(f"{len(answers)} answers but {len(weights)} weights")
    for i, w in enumerate(weights):
        if not math.isfinite(w) or w < 0:
            raise ValueError(f"weight {i} is {w!r}; weights must be finite and >= 0")
    return _tally(answers, [float(w) for w in weights], "weighted", tie_break)


# --- early stopping ----------------------------------------------------------------------


class Decisive(StrEnum):
    """Why a vote was judged settled."""

    CANNOT_BE_OVERTAKEN = "cannot_be_overtaken"  # exact: no outcome of the rest changes it
    MARGIN = "margin"  # heuristic: self-consistency's "decisive margin" stop


def _check_counts(counts: Mapping[str, float]) -> None:
    for answer, c in counts.items():
        if not math.isfinite(c) or c < 0:
            raise ValueError(f"count for {answer!r} is {c!r}; counts must be finite and >= 0")


def _check_min_margin(min_margin: float) -> None:
    if not 0 < min_margin <= 1:  # also rejects NaN
        raise ValueError(f"min_margin is {min_margin!r}; it must be in (0, 1]")


def cannot_be_overtaken(counts: Mapping[str, float], remaining: float) -> bool:
    """True when leader - runner-up > ``remaining`` (votes still to come, each worth <= 1 in
    a majority vote; the weight still to come in a weighted one). Then even if every
    remaining vote went to the runner-up (or to a new answer) the leader would still win
    outright, so stopping cannot change the winner. Strict: an achievable tie is not settled.
    """
    _check_counts(counts)
    if not math.isfinite(remaining) or remaining < 0:
        raise ValueError(f"remaining is {remaining!r}; it must be finite and >= 0")
    if not counts:
        return False
    top, runner_up = _top_two(counts)
    return top - runner_up > remaining


def margin_is_decisive(
    counts: Mapping[str, float], *, min_margin: float, min_votes: float = 0.0
) -> bool:
    """True when (leader - runner-up) / total >= ``min_margin`` and total >= ``min_votes``.

    A heuristic: the leader could still lose. One vote is a margin of 1.0, so pass
    ``min_votes`` (or check the sample count yourself) to avoid stopping after one sample.
    ``min_margin`` must be in (0, 1].
    """
    _check_counts(counts)
    _check_min_margin(min_margin)
    total = math.fsum(counts.values())
    return total > 0 and total >= min_votes and vote_margin(counts) >= min_margin


def decisive_reason(
    counts: Mapping[str, float],
    remaining: float,
    *,
    min_margin: float,
    min_votes: float = 0.0,
) -> Decisive | None:
    """Which early-stop rule settles the vote, the exact one checked first; None if neither.

    >>> decisive_reason({"42": 3.0, "41": 1.0}, remaining=1, min_margin=0.9)
    <Decisive.CANNOT_BE_OVERTAKEN: 'cannot_be_overtaken'>
    >>> decisive_reason({"42": 4.0}, remaining=10, min_margin=0.9)
    <Decisive.MARGIN: 'margin'>
    >>> decisive_reason({"42": 2.0, "41": 1.0}, remaining=10, min_margin=0.9) is None
    True
    """
    _check_min_margin(min_margin)
    if cannot_be_overtaken(counts, remaining):
        return Decisive.CANNOT_BE_OVERTAKEN
    if margin_is_decisive(counts, min_margin=min_margin, min_votes=min_votes):
        return Decisive.MARGIN
    return None


def is_decisive(
    counts: Mapping[str, float],
    remaining: float,
    *,
    min_margin: float,
    min_votes: float = 0.0,
) -> bool:
    """True when ``decisive_reason`` names a rule: the leader cannot be overtaken by the
    ``remaining`` votes (exact), or its margin fraction is >= ``min_margin`` (heuristic)."""
    return (
        decisive_reason(counts, remaining, min_margin=min_margin, min_votes=min_votes) is not None
    )
