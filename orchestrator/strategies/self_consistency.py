"""``self_consistency`` (Wang et al., arXiv 2203.11171): sample ``n`` reasoning paths per
planned model, extract each final answer, return the most frequent.

With vote weights in the plan (e.g. SelectLLM's WEIGHTEDMAXCONF), each candidate votes with
its model's weight; tied answers go to the model listed first in the plan.

A tie at the top of the vote goes by ``tie_break``: ``first`` (the first planned model's
answer, then the first to appear) or ``mean_logprob`` (the answer whose samples have the
highest mean per-token log-probability); the trace's vote says whether it tied and which
rule picked the winner.

With ``vote: verifier`` the finished candidates vote with weights from the step verifier
(``orchestrator.strategies.votes``), once, after sampling; early stopping needs the plain
vote (the config refuses both together).

With ``early_stop`` the samples are drawn in rounds and sampling stops once the vote is
settled (see ``EarlyStopConfig``). With ``exact_stop`` each sample is a call of its own,
and the calls still running are cancelled the moment they can no longer change the winner
(``orchestrator.strategies.exact_stop``; in rounds too). Sample i of a model always uses
seed + i, so a seeded run draws the same paths with or without early stopping; it just
stops sooner.
"""

from __future__ import annotations

import asyncio

from orchestrator.aggregation.voting import Decisive, decisive_reason
from orchestrator.strategies.base import StrategyContext, StrategyResult, sampling_params
from orchestrator.strategies.config import SelfConsistencyConfig
from orchestrator.strategies.exact_stop import ExactStopCount, sample_until_settled
from orchestrator.strategies.votes import cast_vote, plain_vote, representative
from orchestrator.types import Candidate
from workers.base import GenerateRequest

__all__ = ["run_self_consistency"]


async def run_self_consistency(
    ctx: StrategyContext, config: SelfConsistencyConfig
) -> StrategyResult:
    round_size = config.early_stop.round_size if config.early_stop else config.n
    exact = ExactStopCount(config.n * len(ctx.models)) if config.exact_stop else None
    mark = ctx.calls.mark()
    candidates: list[Candidate] = []
    drawn, stop_reason = 0, None
    while drawn < config.n:
        size = min(round_size, config.n - drawn)
        if exact is not None:
            draw = await sample_until_settled(
                ctx,
                [
                    (model, _request(ctx, config, 1, drawn + i))
                    for model in ctx.models
                    for i in range(size)
                ],
                earlier=candidates,
                later_weight=(config.n - drawn - size) * _weight_per_round(ctx),
            )
            exact.add(draw)
            candidates += draw.candidates
            if draw.settled:
                stop_reason = Decisive.CANNOT_BE_OVERTAKEN
                break
        else:
            request = _request(ctx, config, size, drawn)
            results = await asyncio.gather(*(ctx.calls.generate(m, request) for m in ctx.models))
            for result in results:
                candidates += ctx.candidates(result)
        drawn += size
        if config.early_stop is not None and drawn < config.n:
            stop_reason = decisive_reason(
                plain_vote(candidates, ctx).result.counts,
                remaining=(config.n - drawn) * _weight_per_round(ctx),
                min_margin=config.early_stop.min_margin,
                min_votes=config.early_stop.min_samples,
            )
            if stop_reason is not None:
                break
    vote = await cast_vote(candidates, ctx, config.vote, config.path_aggregate, config.tie_break)
    extra = vote.extra
    if stop_reason is not None:
        extra["early_stop"] = str(stop_reason)
    if exact is not None:
        extra["exact_stop"] = exact.record(ctx.calls.cost_since(mark).completion_tokens)
    return StrategyResult(
        answer=vote.result.winner,
        chosen=representative(candidates, vote),
        candidates=candidates,
        vote=vote.result.to_record(stopped_early=stop_reason is not None),
        extra=extra,
    )


def _request(
    ctx: StrategyContext, config: SelfConsistencyConfig, n: int, drawn: int
) -> GenerateRequest:
    """``n`` samples, the first being sample ``drawn`` (seeded seed + drawn)."""
    params = sampling_params(config, n=n, seed_offset=drawn)
    return GenerateRequest(prompt=ctx.prompt, params=params, request_id=ctx.query.id)


def _weight_per_round(ctx: StrategyContext) -> float:
    """Total vote weight one more sample from every planned model adds."""
    if not ctx.vote_weights:
        return float(len(ctx.models))
    return sum(ctx.vote_weights.get(m, 0.0) for m in ctx.models)
