"""The vote over sampled candidates that ``self_consistency`` and ``system2`` share: a plain
(or plan-weighted) majority, or with ``vote: verifier`` a vote weighted by the step
verifier's path scores (``orchestrator.aggregation.verifier_vote`` has the rules), each
candidate's steps being its non-empty lines.
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
from orchestrator.aggregation.voting import VoteResult, majority_vote, weighted_vote
from orchestrator.strategies.base import StrategyContext
from orchestrator.strategies.config import VoteKind
from orchestrator.strategies.stepwise import split_steps
from orchestrator.types import Candidate

__all__ = ["CandidateVote", "cast_vote", "plain_vote", "representative", "verifier_vote"]


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


def plain_vote(candidates: Sequence[Candidate], ctx: StrategyContext) -> CandidateVote:
    """Majority vote, or weighted by the plan's per-model weights (ties to the model listed
    first)."""
    answers = [c.answer for c in candidates]
    weights, tie_break = _plan_weights(candidates, ctx)
    if weights is None:
        return CandidateVote(majority_vote(answers))
    return CandidateVote(weighted_vote(answers, weights, tie_break=tie_break))


async def verifier_vote(
    candidates: Sequence[Candidate], ctx: StrategyContext, aggregate: PathAggregate
) -> CandidateVote:
    """Vote weighted by the step verifier (times the plan's weights, if any)."""
    scale = ctx.calls.require_step_verifier().scale
    steps = [split_steps(c.text) for c in candidates]
    scores = await ctx.calls.score_steps(ctx.prompt, steps)
    prior, tie_break = _plan_weights(candidates, ctx)
    result = verifier_weighted_vote(
        [c.answer for c in candidates],
        scores,
        aggregate=aggregate,
        scale=scale,
        tie_break=tie_break,
        prior=prior,
    )
    return CandidateVote(result, tuple(path_score(s, aggregate) for s in scores))


async def cast_vote(
    candidates: Sequence[Candidate],
    ctx: StrategyContext,
    vote: VoteKind,
    aggregate: PathAggregate,
) -> CandidateVote:
    """The vote a strategy's ``vote`` setting asks for (``aggregate``: verifier votes)."""
    if vote == "verifier":
        return await verifier_vote(candidates, ctx, aggregate)
    return plain_vote(candidates, ctx)


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
