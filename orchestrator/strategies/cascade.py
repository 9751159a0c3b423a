"""``cascade``: run a self-consistency stage on the planned models in order (cheapest
first) and stop at the first model whose vote is decisive.

A stage is decisive when it has an answer and its vote margin is >= ``min_margin``; with
``min_verifier_score`` set, the step verifier must also score the stage's chosen candidate
(its path score under ``stage.path_aggregate``) at or above it, so a confident but wrong
small model can still be escalated. The answer is the first decisive stage's; when none
is, the last stage's (the strongest model's). Every stage's candidates and vote stay in
the trace (``extra["cascade"]``).
"""

from __future__ import annotations

from dataclasses import replace

from orchestrator.aggregation.verifier_vote import path_score
from orchestrator.strategies.base import StrategyContext, StrategyResult
from orchestrator.strategies.config import CascadeConfig
from orchestrator.strategies.self_consistency import run_self_consistency
from orchestrator.strategies.stepwise import split_steps
from orchestrator.types import Candidate

__all__ = ["run_cascade"]


async def _verifier_score(
    ctx: StrategyContext, result: StrategyResult, config: CascadeConfig
) -> float | None:
    """The step verifier's path score of the stage's chosen candidate (None: no steps)."""
    if result.chosen is None:
        return None
    scored: list[float | None] | None = result.extra.get("path_scores")
    if scored is not None:  # the stage voted with the verifier: its paths are scored already
        return next(s for c, s in zip(result.candidates, scored, strict=True) if c is result.chosen)
    [scores] = await ctx.calls.score_steps(ctx.prompt, [split_steps(result.chosen.text)])
    return path_score(scores, config.stage.path_aggregate)


async def run_cascade(ctx: StrategyContext, config: CascadeConfig) -> StrategyResult:
    stages: list[dict[str, object]] = []
    candidates: list[Candidate] = []
    result: StrategyResult | None = None
    for model in ctx.models:
        result = await run_self_consistency(replace(ctx, models=(model,)), config.stage)
        candidates += result.candidates
        margin = result.vote.margin if result.vote else 0.0
        decisive = result.answer is not None and margin >= config.min_margin
        stage: dict[str, object] = {"model": model, "answer": result.answer, "margin": margin}
        if decisive and config.min_verifier_score is not None:
            score = await _verifier_score(ctx, result, config)
            stage["verifier_score"] = score
            decisive = score is not None and score >= config.min_verifier_score
        stages.append(stage)
        if decisive:
            break
    assert result is not None  # a plan has at least one model
    return StrategyResult(
        answer=result.answer,
        chosen=result.chosen,
        candidates=candidates,
        vote=result.vote,
        extra={"cascade": stages},
    )
