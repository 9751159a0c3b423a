"""Strategies: one module each, one signature ``(ctx, config) -> StrategyResult``."""

from __future__ import annotations

from orchestrator.strategies.base import StrategyContext, StrategyFn, StrategyResult
from orchestrator.strategies.cascade import run_cascade
from orchestrator.strategies.config import (
    CascadeConfig,
    CoderRerankerConfig,
    CoderReviewerRerankerConfig,
    EarlyStopConfig,
    GreedyConfig,
    MetastableConfig,
    RandomRerankerConfig,
    RerankConfig,
    RerankerConfig,
    RSARerankerConfig,
    SampleConfig,
    SelfConsistencyConfig,
    StepBeamConfig,
    StrategyConfig,
    VerifierGuidedConfig,
)
from orchestrator.strategies.greedy import run_greedy
from orchestrator.strategies.llm2 import run_verifier_guided
from orchestrator.strategies.metastable import run_metastable
from orchestrator.strategies.rerank import run_rerank
from orchestrator.strategies.sample import run_sample
from orchestrator.strategies.self_consistency import run_self_consistency
from orchestrator.strategies.step_beam import run_step_beam

__all__ = [
    "STRATEGIES",
    "CascadeConfig",
    "CoderRerankerConfig",
    "CoderReviewerRerankerConfig",
    "EarlyStopConfig",
    "GreedyConfig",
    "MetastableConfig",
    "RSARerankerConfig",
    "RandomRerankerConfig",
    "RerankConfig",
    "RerankerConfig",
    "SampleConfig",
    "SelfConsistencyConfig",
    "StepBeamConfig",
    "StrategyConfig",
    "StrategyContext",
    "StrategyFn",
    "StrategyResult",
    "VerifierGuidedConfig",
    "run_strategy",
]

STRATEGIES: dict[str, StrategyFn] = {
    "greedy": run_greedy,
    "sample": run_sample,
    "self_consistency": run_self_consistency,
    "cascade": run_cascade,
    "rerank": run_rerank,
    "step_beam": run_step_beam,
    "metastable": run_metastable,
    "system2": run_verifier_guided,
}


async def run_strategy(ctx: StrategyContext, config: StrategyConfig) -> StrategyResult:
    """Run the strategy ``config.kind`` names; unknown kinds list the known ones."""
    try:
        strategy = STRATEGIES[config.kind]
    except KeyError:
        known = ", ".join(sorted(STRATEGIES))
        raise ValueError(f"unknown strategy {config.kind!r}; known: {known}") from None
    return await strategy(ctx, config)
