"""Running one query: a routing policy's plan on worker pools, then aggregation.

The orchestrator takes its workers and routing policy by injection; building them from a
YAML config is the application's job (``system2.load_orchestrator``).
"""

from __future__ import annotations

from orchestrator.orchestrator import Orchestrator
from orchestrator.prompts import PromptConfig
from orchestrator.routing import Plan, RoutingPolicy
from orchestrator.strategies import (
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
from orchestrator.types import (
    Answer,
    Candidate,
    GenerationRecord,
    ModelUsage,
    Query,
    TaskType,
    Trace,
    Usage,
    VoteRecord,
)

__all__ = [
    "Answer",
    "Candidate",
    "CoderRerankerConfig",
    "CoderReviewerRerankerConfig",
    "EarlyStopConfig",
    "GenerationRecord",
    "GreedyConfig",
    "MetastableConfig",
    "ModelUsage",
    "Orchestrator",
    "Plan",
    "PromptConfig",
    "Query",
    "RSARerankerConfig",
    "RandomRerankerConfig",
    "RerankConfig",
    "RerankerConfig",
    "RoutingPolicy",
    "SampleConfig",
    "SelfConsistencyConfig",
    "StepBeamConfig",
    "StrategyConfig",
    "TaskType",
    "Trace",
    "Usage",
    "VerifierGuidedConfig",
    "VoteRecord",
]
