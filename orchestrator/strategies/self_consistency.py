"""``self_consistency`` (Wang et al., arXiv 2203.11171): sample ``n`` reasoning paths per
planned model, extract each final answer, return the most frequent.

With vote weights in the plan (e.g. SelectLLM's WEIGHTEDMAXCONF), each candidate votes with
its model's weight; tied answers go to the model listed first in the plan.

With ``early_stop`` the samples are drawn in rounds and sampling stops once the vote is
settled (see ``EarlyStopConfig``). Sample i of a model always uses seed + i, so a seeded
run draws the same paths with or without early stopping; it just stops sooner.
"""

from __future__ import annotations

import asyncio

from orchestrator.aggregation.voting import (
    VoteResult,
    decisive_reason,
    majority_vote,
    weighted_vote,
)
from orchestrator.strategies.base import StrategyContext, StrategyResult, sampling_params
from orchestrator.strategies.config import SelfConsistencyConfig
from orchestrator.types import Candidate
from workers.base import GenerateRequest

__all__ = ["run_self_consistency"]


async def run_self_consistency(
    ctx: StrategyContext, config: SelfConsistencyConfig
) -> StrategyResult:
    round_size = config.early_stop.round_size if config.early_stop else config.n
    candidates: list[Candidate] = []
    drawn, stop_reason = 0, None
    vote = majority_vote([])
    while drawn < config.n:
        size = min(round_size, config.n - drawn)
        request = GenerateRequest(
            prompt=ctx.prompt,
            params=sampling_params(config, n=size, seed_offset=drawn),
            request_id=ctx.query.id,
        )
        results = await asyncio.gather(*(ctx.calls.generate(m, request) for m in ctx.models))
        for result in results:
            candidates += ctx.candidates(result)
        drawn += size
        vote = _vote(candidates, ctx)
        if config.early_stop is not None and drawn < config.n:
            stop_reason = decisive_reason(
                vote.counts,
                remaining=(config.n - drawn) * _weight_per_round(ctx),
                min_margin=config.early_stop.min_margin,
                min_votes=config.early_stop.min_samples,
            )
            if stop_reason is not None:
                break
    chosen = _representative(candidates, vote)
    return StrategyResult(
        answer=vote.winner,
        chosen=chosen,
        candidates=candidates,
        vote=vote.to_record(stopped_early=stop_reason is not None),
        extra={"early_stop": str(stop_reason)} if stop_reason is not None else {},
    )


def _vote(candidates: list[Candidate], ctx: StrategyContext) -> VoteResult:
    answers = [c.answer for c in candidates]
    if not ctx.vote_weights:
        return majority_vote(answers)
    weights = [ctx.vote_weights.get(c.model, 0.0) for c in candidates]
    by_rank = sorted(candidates, key=lambda c: ctx.models.index(c.model))
    tie_break = [c.answer for c in by_rank if c.answer is not None]
    return weighted_vote(answers, weights, tie_break=tie_break)


def _weight_per_round(ctx: StrategyContext) -> float:
    """Total vote weight one more sample from every planned model adds."""
    if not ctx.vote_weights:
        return float(len(ctx.models))
    return sum(ctx.vote_weights.get(m, 0.0) for m in ctx.models)


def _representative(candidates: list[Candidate], vote: VoteResult) -> Candidate | None:
    """The most likely (highest mean token log-prob) candidate that gave the winning answer."""
    winners = [c for c in candidates if vote.winner is not None and c.answer == vote.winner]
    if not winners:
        return None
    return max(winners, key=lambda c: c.total_logprob / max(c.completion_tokens, 1))
