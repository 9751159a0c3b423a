"""``system2``: verifier-guided decoding (LLM2, arXiv 2412.20372) on every planned model.

Each request carries ``SamplingParams.guidance`` (beta, alpha, top_k), so the worker's
token verifier steers every step. ``n = 1`` returns the first model's guided completion
(guided greedy when ``temperature = 0``); ``n > 1`` draws ``n`` guided samples per model
(sample i seeded seed + i, as self-consistency does) and returns the voted answer (majority,
or with ``vote: verifier`` weighted by the step verifier, as self-consistency votes).

A planned model whose worker has no verifier (``Worker.supports_guidance`` False) is a
``ConfigError`` naming it, raised before any call is made.
"""

from __future__ import annotations

import asyncio

from orchestrator.strategies.base import StrategyContext, StrategyResult
from orchestrator.strategies.config import VerifierGuidedConfig
from orchestrator.strategies.votes import cast_vote, representative
from workers.base import GenerateRequest, Guidance, SamplingParams

__all__ = ["run_system2"]


async def run_system2(ctx: StrategyContext, config: VerifierGuidedConfig) -> StrategyResult:
    _require_verifiers(ctx)
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
    results = await asyncio.gather(*(ctx.calls.generate(m, request) for m in ctx.models))
    candidates = [c for result in results for c in ctx.candidates(result)]
    extra = {"guidance": guidance.model_dump()}
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
        vote=vote.result.to_record(),
        extra=extra | vote.extra,
    )


def _require_verifiers(ctx: StrategyContext) -> None:
    from system2.config import ConfigError  # system2.config imports strategies

    for model in ctx.models:
        if not ctx.calls.worker(model).supports_guidance:
            raise ConfigError(
                f"strategy 'system2' needs a token verifier on model {model!r}, whose worker "
                "has none: add `verifier: {path: DIR}` to its transformers config (train "
                "one with `system2 verifier train`), or use another strategy"
            )
