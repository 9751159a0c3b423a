"""Constant plans (fixed, all, cascade): one plan for every query, and the cascade policy's
plans run by the cascade strategy, escalating only while the vote is not decisive."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.routing import Plan
from orchestrator.strategies.config import CascadeConfig, GreedyConfig, SelfConsistencyConfig
from orchestrator.types import Query
from policies.constant import AllModelsPolicy, CascadePolicy, ConstantPolicy, FixedPolicy

MODELS = ("small", "medium", "large")
THREE_SAMPLES = SelfConsistencyConfig(n=3)


def test_constant_policy_plans_its_plan_for_every_query() -> None:
    """A constant policy returns the very plan it holds, whatever the query, and declares
    that plan's models."""
    held = Plan(models=("large", "small"), strategy=GreedyConfig(), reason="held")
    policy = ConstantPolicy(held)
    assert policy.plan(Query(text="a")) is held
    assert policy.plan(Query(text="b", id="other")) is held
    assert policy.models() == {"large", "small"}


@pytest.mark.parametrize(
    ("policy", "strategy", "reason"),
    [
        (FixedPolicy(MODELS, GreedyConfig()), GreedyConfig(), "fixed policy"),
        (AllModelsPolicy(MODELS, THREE_SAMPLES), THREE_SAMPLES, "all models"),
        (CascadePolicy(MODELS, CascadeConfig()), CascadeConfig(), "cascade, cheapest first"),
    ],
    ids=["fixed", "all", "cascade"],
)
def test_fixed_all_and_cascade_are_constant_plans_with_their_reasons(
    policy: ConstantPolicy, strategy: Any, reason: str
) -> None:
    """fixed, all and cascade each plan the models in order with their strategy and reason."""
    plan = policy.plan(Query(text="q"))
    assert (plan.models, plan.strategy, plan.reason) == (MODELS, strategy, reason)
    assert (plan.confidences, plan.vote_weights) == ({}, {})
    assert policy.models() == set(MODELS)


def test_all_models_plans_every_model() -> None:
    """The all-models baseline plans the whole pool for every query."""
    plan = AllModelsPolicy(MODELS, GreedyConfig()).plan(Query(text="q"))
    assert plan.models == MODELS


def test_example_cascade_yaml_loads(tmp_path: Path) -> None:
    """A cascade declared in YAML loads with its stage settings."""
    path = tmp_path / "cascade.yaml"
    path.write_text(
        "models:\n"
        "  small: {kind: scripted, responses: ['The answer is 1.']}\n"
        "  large: {kind: scripted, responses: ['The answer is 1.']}\n"
        "policy:\n"
        "  kind: cascade\n"
        "  models: [small, large]\n"
        "  strategy: {kind: cascade, min_margin: 0.5, stage: {n: 4}}\n"
    )
    from system2.config import load_config

    config = load_config(path)
    assert config.policy.kind == "cascade"
    assert isinstance(config.policy.strategy, CascadeConfig)
    assert config.policy.strategy.stage.n == 4
