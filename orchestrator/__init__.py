"""system2's orchestrator: run a routing policy's plan on worker pools and aggregate.

Example:
    >>> from orchestrator import Orchestrator
    >>> orch = Orchestrator.from_yaml("examples/math_agent/math_agent.yaml")  # doctest: +SKIP
    >>> orch.answer_sync("What is 17 * 3?").answer  # doctest: +SKIP
    '51'
"""

from __future__ import annotations

from orchestrator.config import ConfigError, System2Config, load_config, parse_config
from orchestrator.orchestrator import Orchestrator
from orchestrator.prompts import PromptConfig
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
    "ConfigError",
    "EarlyStopConfig",
    "GenerationRecord",
    "GreedyConfig",
    "MetastableConfig",
    "ModelUsage",
    "Orchestrator",
    "PromptConfig",
    "Query",
    "RSARerankerConfig",
    "RandomRerankerConfig",
    "RerankConfig",
    "RerankerConfig",
    "SampleConfig",
    "SelfConsistencyConfig",
    "StepBeamConfig",
    "StrategyConfig",
    "System2Config",
    "TaskType",
    "Trace",
    "Usage",
    "VerifierGuidedConfig",
    "VoteRecord",
    "load_config",
    "parse_config",
]
