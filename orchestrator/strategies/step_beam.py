"""``step_beam``: plain beam search over reasoning steps, the baseline for ``metastable``.

Each round every beam gets ``expansions`` sampled next steps (one call per beam, batched by
the worker); finished children leave the beam, the best ``beam_width`` unfinished ones by
path value go on (duplicates by normalised step text dropped). The search ends when
``beam_width`` paths have finished, no beam is left, or the token budget is spent; if the
budget ends with nothing finished, the best beam is rolled out (charged to the budget too).
The answer is the value-weighted vote over finished paths. Path values are the model's
confidence, or with ``value: verifier`` the step verifier's (every child is verified
before the beam is cut).
"""

from __future__ import annotations

from typing import Any

from orchestrator.graph import normalize_step
from orchestrator.strategies.base import StrategyContext, StrategyResult
from orchestrator.strategies.config import StepBeamConfig
from orchestrator.strategies.stepwise import (
    Path,
    StepSampler,
    StepSettings,
    TokenBudget,
    extend_one_step,
    roll_out,
    search_result,
    value_rule,
    verify_paths,
)

__all__ = ["run_step_beam", "step_settings"]


def step_settings(config: StepBeamConfig | Any) -> StepSettings:
    """The sampling settings of a step-search config."""
    return StepSettings(
        temperature=config.temperature,
        top_p=config.top_p,
        top_k=config.top_k,
        step_max_tokens=config.step_max_tokens,
        max_steps=config.max_steps,
        max_path_tokens=config.max_tokens,
        seed=config.seed,
    )


def _distinct(paths: list[Path]) -> list[Path]:
    seen: set[tuple[str, ...]] = set()
    kept = []
    for p in paths:
        key = tuple(normalize_step(s) for s in p.steps)
        if key not in seen:
            seen.add(key)
            kept.append(p)
    return kept


async def run_step_beam(ctx: StrategyContext, config: StepBeamConfig) -> StrategyResult:
    model = ctx.models[0]
    sampler = StepSampler(step_settings(config))
    rule = value_rule(ctx, config.value, config.path_aggregate)
    budget = TokenBudget(config.budget_tokens)
    beams = [Path()]
    finished: list[Path] = []
    rounds = 0
    while beams and budget.left and len(finished) < config.beam_width:
        children, completions = await extend_one_step(ctx, model, beams, config.expansions, sampler)
        budget.charge(completions)
        rounds += 1
        flat = await verify_paths(ctx, [c for group in children for c in group], rule)
        finished.extend(c for c in flat if c.finished)
        alive = _distinct([c for c in flat if not c.finished])
        beams = sorted(alive, key=lambda p: p.value, reverse=True)[: config.beam_width]
    forced = False
    if not finished and beams:
        rolled, completions = await roll_out(ctx, model, beams[:1], sampler)
        budget.charge(completions)
        finished.extend(await verify_paths(ctx, rolled, rule))
        forced = True
    extra = {
        "search": {
            "kind": "step_beam",
            "value": config.value,
            "budget_tokens": budget.limit,
            "tokens": budget.spent,
            "rounds": rounds,
            "finished_paths": len(finished),
            "forced_rollout": forced,
        }
    }
    return search_result(ctx, model, finished, extra)
