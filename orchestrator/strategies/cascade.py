"""``cascade``: run a self-consistency stage on the planned models in order (cheapest
first) and stop at the first model whose vote is decisive.

A stage is decisive when it has an answer and its vote margin is >= ``min_margin``. The
answer is the first decisive stage's; when none is, the last stage's (the strongest
model's). Every stage's candidates and vote stay in the trace (``extra["cascade"]``).
"""

from __future__ import annotations

from dataclasses import replace

from orchestrator.strategies.base import StrategyContext, StrategyResult
from orchestrator.strategies.config import CascadeConfig
from orchestrator.strategies.self_consistency import run_self_consistency

__all__ = ["run_cascade"]


async def run_cascade(ctx: StrategyContext, config: CascadeConfig) -> StrategyResult:
    stages: list[dict[str, object]] = []
    result: StrategyResult | None = None
    for model in ctx.models:
        result = await run_self_consistency(replace(ctx, models=(model,)), config.stage)
        margin = result.vote.margin if result.vote else 0.0
        decisive = result.answer is not None and margin >= config.min_margin
        stages.append({"model": model, "answer": result.answer, "margin": margin})
        if decisive:
            break
    assert result is not None  # a plan has at least one model
    candidates = [c for c in ctx.calls.trace.candidates]
    return StrategyResult(
        answer=result.answer,
        chosen=result.chosen,
        candidates=candidates,
        vote=result.vote,
        extra={"cascade": stages},
    )
