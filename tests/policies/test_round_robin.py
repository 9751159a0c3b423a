"""The round-robin policy: one model per query, in turn."""

from __future__ import annotations

from orchestrator.strategies.config import GreedyConfig
from orchestrator.types import Query
from policies.round_robin import RoundRobinPolicy

MODELS = ("small", "medium", "large")


def test_round_robin_cycles_through_models() -> None:
    """Round robin takes the models in turn, one per query."""
    policy = RoundRobinPolicy(MODELS, GreedyConfig())
    picked = [policy.plan(Query(text="q")).models for _ in range(4)]
    assert picked == [("small",), ("medium",), ("large",), ("small",)]
