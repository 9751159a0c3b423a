"""``system2``: verifier-guided decoding (LLM2, arXiv 2412.20372) on every planned model.

Each request carries ``SamplingParams.guidance`` (beta, alpha, top_k), so the worker's
token verifier steers every step. ``n = 1`` returns the first model's guided completion
(guided greedy when ``temperature = 0``); ``n > 1`` draws ``n`` guided samples per model
(sample i seeded seed + i, as self-consistency does) and returns the voted answer (majority,
or with ``vote: verifier`` weighted by the step verifier, as self-consistency votes).
With ``exact_stop`` (and ``n > 1``) each guided sample is a call of its own, cancelled once
it can no longer change the vote's winner (``orchestrator.strategies.exact_stop``).

A planned model needs a token verifier; the config loader checks that once, at load time.
A worker without one that gets a guided request anyway refuses it (``UnsupportedRequest``,
a ``WorkerFailure``), so the query is answered ``status="failed"`` with the reason, naming
the model, in ``trace.failures``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from orchestrator.strategies.base import StrategyContext, StrategyResult
from orchestrator.strategies.config import VerifierGuidedConfig
from orchestrator.strategies.exact_stop import ExactStopCount, sample_until_settled
from orchestrator.strategies.votes import cast_vote, representative
from workers.base import GenerateRequest, Guidance, SamplingParams

__all__ = ["run_verifier_guided"]


async def run_verifier_guided(ctx: StrategyContext, config: VerifierGuidedConfig) -> StrategyResult:
    guidance = Guidance(beta=config.beta, alpha=config.alpha, top_k=config.top_k)
    params = SamplingParams(
        n=config.n,
        temperature=config.temperature,
        top_p=config.top_p,
        max_tokens=config.max_tokens,
        seed=config.seed,
        guidance=guidance,
    )
    request = GenerateRequest(prompt=ctx.prompt, params=params, request_id=ctx.query.id)
    extra: dict[str, Any] = {"guidance": guidance.model_dump()}
    stopped_early = False
    if config.exact_stop and config.n > 1:
        mark = ctx.calls.mark()
        draw = await sample_until_settled(
            ctx, [(m, _one(request, i)) for m in ctx.models for i in range(config.n)]
        )
        candidates, stopped_early = draw.candidates, draw.settled
        count = ExactStopCount(config.n * len(ctx.models), [draw])
        extra["exact_stop"] = count.record(ctx.calls.cost_since(mark).completion_tokens)
    else:
        results = await asyncio.gather(*(ctx.calls.generate(m, request) for m in ctx.models))
        candidates = [c for result in results for c in ctx.candidates(result)]
    if config.n == 1:
        chosen = candidates[0]
        return StrategyResult(
            answer=chosen.answer, chosen=chosen, candidates=candidates, extra=extra
        )
    vote = await cast_vote(candidates, ctx, config.vote, config.path_aggregate)
    return StrategyResult(
        answer=vote.result.winner,
        chosen=representative(candidates, vote),
        candidates=candidates,
        vote=vote.result.to_record(stopped_early=stopped_early),
        extra=extra | vote.extra,
    )


def _one(request: GenerateRequest, i: int) -> GenerateRequest:
    """Sample ``i`` of ``request`` alone (seeded seed + i, as it is within the request)."""
    p = request.params
    seed = None if p.seed is None else p.seed + i
    return request.model_copy(update={"params": p.model_copy(update={"n": 1, "seed": seed})})
