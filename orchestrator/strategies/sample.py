"""``sample``: one sampled completion from the first planned model."""

from __future__ import annotations

from orchestrator.strategies.base import StrategyContext, StrategyResult
from orchestrator.strategies.config import SampleConfig
from workers.base import GenerateRequest, SamplingParams

__all__ = ["run_sample"]


async def run_sample(ctx: StrategyContext, config: SampleConfig) -> StrategyResult:
    params = SamplingParams(
        temperature=config.temperature,
        top_p=config.top_p,
        top_k=config.top_k,
        max_tokens=config.max_tokens,
        seed=config.seed,
    )
    request = GenerateRequest(prompt=ctx.prompt, params=params, request_id=ctx.query.id)
    result = await ctx.calls.generate(ctx.models[0], request)
    (chosen,) = ctx.candidates(result)
    return StrategyResult(answer=chosen.answer, chosen=chosen, candidates=[chosen])
