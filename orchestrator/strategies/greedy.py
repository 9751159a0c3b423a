"""``greedy``: one deterministic completion from each planned model; the first model's
candidate is the answer (the others are kept in the trace for comparison). When the query
is watched (an event sink), the completions are streamed: their text goes out as the
engine makes it."""

from __future__ import annotations

import asyncio

from orchestrator.strategies.base import StrategyContext, StrategyResult
from orchestrator.strategies.config import GreedyConfig
from workers.base import GenerateRequest, SamplingParams

__all__ = ["run_greedy"]


async def run_greedy(ctx: StrategyContext, config: GreedyConfig) -> StrategyResult:
    params = SamplingParams(temperature=0.0, max_tokens=config.max_tokens)
    request = GenerateRequest(prompt=ctx.prompt, params=params, request_id=ctx.query.id)
    generate = ctx.calls.stream_generate if ctx.calls.observed else ctx.calls.generate
    results = await asyncio.gather(*(generate(m, request) for m in ctx.models))
    candidates = [c for result in results for c in ctx.candidates(result)]
    chosen = candidates[0]
    return StrategyResult(answer=chosen.answer, chosen=chosen, candidates=candidates)
