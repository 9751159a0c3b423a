"""Policy configs and the registry: each kind builds its policy, planning its own strategy
or the config's default."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.strategies.config import CascadeConfig, GreedyConfig, SelfConsistencyConfig
from orchestrator.types import Query
from policies.config import POLICY_BUILDERS, build_policy, policy_strategy
from policies.constant import AllModelsPolicy, CascadePolicy, FixedPolicy, FixedPolicyConfig
from policies.random_subset import RandomSubsetPolicy
from policies.round_robin import RoundRobinPolicy
from system2.config import parse_config

MODELS = ("small", "medium", "large")
DECLARED = {m: {"kind": "scripted", "responses": ["The answer is 1."]} for m in MODELS}


def test_policies_from_yaml_data() -> None:
    """Each baseline kind parses from config data and builds the matching policy."""
    for kind, cls in [("all", AllModelsPolicy), ("round_robin", RoundRobinPolicy)]:
        config = parse_config(
            {"models": DECLARED, "policy": {"kind": kind, "models": list(MODELS)}}
        )
        assert isinstance(build_policy(config.policy, config.strategy), cls)
    config = parse_config(
        {"models": DECLARED, "policy": {"kind": "random", "models": ["small", "large"], "k": 1}}
    )
    assert isinstance(build_policy(config.policy, config.strategy), RandomSubsetPolicy)


@pytest.mark.parametrize(
    ("policy", "cls"),
    [
        ({"kind": "fixed", "models": ["small"]}, FixedPolicy),
        ({"kind": "all", "models": ["small"]}, AllModelsPolicy),
        ({"kind": "random", "models": ["small"]}, RandomSubsetPolicy),
        ({"kind": "round_robin", "models": ["small"]}, RoundRobinPolicy),
    ],
    ids=["fixed", "all", "random", "round_robin"],
)
def test_a_policy_plans_its_own_strategy_else_the_default(
    policy: dict[str, Any], cls: type
) -> None:
    """Without a strategy of its own a policy plans the config's default; with one, its own."""
    default = parse_config({"models": DECLARED, "policy": policy, "strategy": {"kind": "greedy"}})
    built = build_policy(default.policy, default.strategy)
    assert isinstance(built, cls)
    assert built.plan(Query(text="q")).strategy == GreedyConfig()
    assert default.planned_strategy == GreedyConfig()
    own = parse_config(
        {"models": DECLARED, "policy": {**policy, "strategy": {"kind": "self_consistency"}}}
    )
    assert build_policy(own.policy, GreedyConfig()).plan(Query(text="q")).strategy == (
        SelfConsistencyConfig()
    )
    assert own.planned_strategy == SelfConsistencyConfig()


def test_cascade_plans_its_cascade_strategy() -> None:
    """A cascade policy always plans its own cascade strategy, never the default."""
    config = parse_config({"models": DECLARED, "policy": {"kind": "cascade", "models": ["small"]}})
    built = build_policy(config.policy, GreedyConfig())
    assert isinstance(built, CascadePolicy)
    assert built.plan(Query(text="q")).strategy == CascadeConfig()
    assert policy_strategy(config.policy, GreedyConfig()) == CascadeConfig()


def test_policy_strategy_prefers_the_policys_own() -> None:
    """``policy_strategy`` is the policy's strategy if set, else the default."""
    bare = FixedPolicyConfig(models=("small",))
    assert policy_strategy(bare, GreedyConfig()) == GreedyConfig()
    own = FixedPolicyConfig(models=("small",), strategy=SelfConsistencyConfig(n=2))
    assert policy_strategy(own, GreedyConfig()) == SelfConsistencyConfig(n=2)


def test_unknown_kind_lists_the_known_ones() -> None:
    """A config of a kind with no builder is refused, listing the kinds there are."""

    class Odd:
        kind = "odd"
        strategy = None

    with pytest.raises(ValueError, match="unknown policy kind 'odd'; known: all, cascade"):
        build_policy(Odd(), GreedyConfig())  # type: ignore[arg-type]
    assert set(POLICY_BUILDERS) == {
        "fixed", "all", "random", "round_robin", "cascade", "selectllm", "compute_aware"
    }  # fmt: skip
