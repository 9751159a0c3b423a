"""The random-subset policy: reproducible per (seed, query id), and k no larger than its pool."""

from __future__ import annotations

import pytest

from orchestrator.strategies.config import GreedyConfig
from orchestrator.types import Query
from policies.random_subset import RandomSubsetPolicy
from system2.config import ConfigError, parse_config

MODELS = ("small", "medium", "large")


def test_random_subset_is_reproducible_per_query() -> None:
    """A random subset depends only on (seed, query id) and has k distinct models."""
    policy = RandomSubsetPolicy(MODELS, GreedyConfig(), k=2, seed=7)
    plans = [policy.plan(Query(text="q", id=f"id{i}")).models for i in range(20)]
    assert all(len(set(p)) == 2 and set(p) <= set(MODELS) for p in plans)
    assert plans == [policy.plan(Query(text="q", id=f"id{i}")).models for i in range(20)]
    assert len(set(plans)) > 1


def test_random_k_larger_than_pool_is_refused() -> None:
    """A random subset bigger than its model list is a config error naming both numbers."""
    models = {m: {"kind": "scripted", "responses": ["x"]} for m in MODELS}
    with pytest.raises(ConfigError, match="k=4 is more than the 2 models"):
        parse_config(
            {"models": models, "policy": {"kind": "random", "models": ["small", "large"], "k": 4}}
        )
