"""``sample``: one sampled completion from the first planned model (streamed when the
query is watched, as ``greedy`` does)."""

from __future__ import annotations

from orchestrator.strategies.base import StrategyContext, StrategyResult, sampling_params
from orchestrator.strategies.config import SampleConfig
from workers.base import GenerateRequest

__all__ = ["run_sample"]


async def run_sample(ctx: StrategyContext, config: SampleConfig) -> StrategyResult:
    params = sampling_params(config)
    request = GenerateRequest(prompt=ctx.prompt, params=params, request_id=ctx.query.id)
    generate = ctx.calls.stream_generate if ctx.calls.observed else ctx.calls.generate
    result = await generate(ctx.models[0], request)
    (chosen,) = ctx.candidates(result)
    return StrategyResult(answer=chosen.answer, chosen=chosen, candidates=[chosen])
