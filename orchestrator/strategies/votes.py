"""The vote over sampled candidates that ``self_consistency`` and ``system2`` share: a plain
(or plan-weighted) majority, or with ``vote: verifier`` a vote weighted by the step
verifier's path scores (``orchestrator.aggregation.verifier_vote`` has the rules), each
candidate's steps being its non-empty lines. With ``tie_break="mean_logprob"`` a tie at
the top goes to the answer whose samples the models were surest of (``mean_logprobs``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.aggregation.verifier_vote import (
    PathAggregate,
    path_score,
    verifier_weighted_vote,
)
from orchestrator.aggregation.voting import (
    TieBreak,
    VoteResult,
    break_tie,
    majority_vote,
    weighted_vote,
)
from orchestrator.strategies.base import StrategyContext
from orchestrator.strategies.config import VoteKind
from orchestrator.strategies.stepwise import split_steps
from orchestrator.types import Candidate

__all__ = [
    "CandidateVote",
    "cast_vote",
    "mean_logprobs",
    "plain_vote",
    "representative",
    "verifier_vote",
]


@dataclass(frozen=True)
class CandidateVote:
    """A vote and, for a verifier vote, each candidate's path score (None: no steps)."""

    result: VoteResult
    path_scores: tuple[float | None, ...] | None = None

    @property
    def extra(self) -> dict[str, Any]:
        """What the trace keeps of it beyond the vote record."""
        return {} if self.path_scores is None else {"path_scores": list(self.path_scores)}


def _plan_weights(
    candidates: Sequence[Candidate], ctx: StrategyContext
) -> tuple[list[float] | None, list[str] | None]:
    """Per-candidate plan weights and the answers in plan order (for ties); None, None
    when the plan gives no weights."""
    if not ctx.vote_weights:
        return None, None
    weights = [ctx.vote_weights.get(c.model, 0.0) for c in candidates]
    by_rank = sorted(candidates, key=lambda c: ctx.models.index(c.model))
    return weights, [c.answer for c in by_rank if c.answer is not None]


def _sample_mean_logprob(candidate: Candidate) -> float:
    if candidate.completion_tokens <= 0:
        return -math.inf
    return candidate.total_logprob / candidate.completion_tokens


def mean_logprobs(candidates: Sequence[Candidate]) -> dict[str, float]:
    """Per answer, the mean over its samples of each sample's mean per-token log-prob (a
    sample with no tokens counts -inf, so its answer does too)."""
    per_answer: dict[str, list[float]] = {}
    for c in candidates:
        if c.answer is not None:
            per_answer.setdefault(c.answer, []).append(_sample_mean_logprob(c))
    return {a: sum(values) / len(values) for a, values in per_answer.items()}


def _broken(result: VoteResult, candidates: Sequence[Candidate], tie_break: TieBreak) -> VoteResult:
    if tie_break == "mean_logprob" and result.is_tie:
        return break_tie(result, mean_logprobs(candidates))
    return result


def plain_vote(
    candidates: Sequence[Candidate], ctx: StrategyContext, tie_break: TieBreak = "first"
) -> CandidateVote:
    """Majority vote, or weighted by the plan's per-model weights (ties to the model listed
    first, or by ``tie_break``)."""
    answers = [c.answer for c in candidates]
    weights, plan_order = _plan_weights(candidates, ctx)
    if weights is None:
        result = majority_vote(answers)
    else:
        result = weighted_vote(answers, weights, tie_break=plan_order)
    return CandidateVote(_broken(result, candidates, tie_break))


async def verifier_vote(
    candidates: Sequence[Candidate],
    ctx: StrategyContext,
    aggregate: PathAggregate,
    tie_break: TieBreak = "first",
) -> CandidateVote:
    """Vote weighted by the step verifier (times the plan's weights, if any)."""
    scale = ctx.calls.require_step_verifier().scale
    steps = [split_steps(c.text) for c in candidates]
    scores = await ctx.calls.score_steps(ctx.prompt, steps)
    prior, plan_order = _plan_weights(candidates, ctx)
    result = verifier_weighted_vote(
        [c.answer for c in candidates],
        scores,
        aggregate=aggregate,
        scale=scale,
        tie_break=plan_order,
        prior=prior,
    )
    return CandidateVote(
        _broken(result, candidates, tie_break), tuple(path_score(s, aggregate) for s in scores)
    )


async def cast_vote(
    candidates: Sequence[Candidate],
    ctx: StrategyContext,
    vote: VoteKind,
    aggregate: PathAggregate,
    tie_break: TieBreak = "first",
) -> CandidateVote:
    """The vote a strategy's ``vote`` setting asks for (``aggregate``: verifier votes),
    ties broken as ``tie_break`` says."""
    if vote == "verifier":
        return await verifier_vote(candidates, ctx, aggregate, tie_break)
    return plain_vote(candidates, ctx, tie_break)


def _or_lowest(score: float | None) -> float:
    return -math.inf if score is None else score


def representative(candidates: Sequence[Candidate], vote: CandidateVote) -> Candidate | None:
    """The candidate standing for the winning answer: the best path score under a verifier
    vote, else the most likely (highest mean token log-prob)."""
    winner = vote.result.winner
    indices = [i for i, c in enumerate(candidates) if winner is not None and c.answer == winner]
    if not indices:
        return None
    scores = vote.path_scores
    if scores is not None:
        return candidates[max(indices, key=lambda i: _or_lowest(scores[i]))]
    return max(
        (candidates[i] for i in indices),
        key=lambda c: c.total_logprob / max(c.completion_tokens, 1),
    )
