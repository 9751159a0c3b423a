"""The compute-aware policy: the threshold rule takes the cheapest arm clearing tau, the
cost-weight rule maximises P - lambda * cost, plans name the arm's model and strategy,
YAML errors name the bad field, and a router for other arms is refused."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from orchestrator.strategies.config import GreedyConfig, SelfConsistencyConfig
from orchestrator.types import Query
from policies import build_policy
from policies.errors import PolicyBuildError
from policies.selectllm.arms import ArmConfig, collection_settings
from policies.selectllm.compute_aware import (
    ComputeAwarePolicy,
    ComputeAwarePolicyConfig,
    choose_by_cost_weight,
    choose_by_threshold,
)
from system2.config import ConfigError, parse_config
from tests.policies.selectllm.test_router import small_router

COSTS = {"cheap": 1.0, "mid": 2.0, "dear": 8.0}
ARMS = (
    ArmConfig(name="cheap", model="small", strategy=GreedyConfig(max_tokens=64)),
    ArmConfig(name="mid", model="large", strategy=GreedyConfig(max_tokens=64)),
    ArmConfig(
        name="dear",
        model="large",
        strategy=SelfConsistencyConfig(n=5, max_tokens=64),
    ),
)


class Table:
    """A scripted router: fixed per-arm P for every query, and the arms' costs."""

    models = ("cheap", "mid", "dear")
    latency: Mapping[str, float] = COSTS
    tokens: Mapping[str, float] = {"cheap": 100.0, "mid": 50.0, "dear": 500.0}

    def __init__(self, p: Mapping[str, float]) -> None:
        self.p = dict(p)

    def confidences(self, texts: Sequence[str]) -> list[dict[str, float]]:
        return [dict(self.p) for _ in texts]


@pytest.mark.parametrize(
    ("tau", "expected"),
    [(0.0, "cheap"), (0.3, "cheap"), (0.31, "mid"), (0.6, "mid"), (0.61, "dear"), (0.9, "dear")],
)
def test_threshold_picks_the_cheapest_arm_clearing_tau(tau: float, expected: str) -> None:
    """P = 0.3 / 0.6 / 0.9 by cost: the cheapest arm with P >= tau; above every P, the most
    probable arm."""
    p = {"cheap": 0.3, "mid": 0.6, "dear": 0.9}
    assert choose_by_threshold(p, COSTS, tau) == expected
    assert choose_by_threshold({"cheap": 0.3, "mid": 0.6, "dear": 0.5}, COSTS, 0.95) == "mid"


def test_threshold_is_not_fooled_by_arm_order() -> None:
    """Cost decides, not the order the arms are listed in; equal P above tau: cheaper wins."""
    p = {"dear": 0.8, "mid": 0.8, "cheap": 0.1}
    assert choose_by_threshold(p, {"dear": 8.0, "mid": 2.0, "cheap": 1.0}, 0.5) == "mid"


@pytest.mark.parametrize(
    ("cost_weight", "expected"), [(0.0, "dear"), (0.3, "dear"), (0.4, "mid"), (3.0, "cheap")]
)
def test_cost_weight_maximises_p_minus_lambda_cost(cost_weight: float, expected: str) -> None:
    """Scores P - lambda * cost / 8: at lambda 0.3 dear 0.6 > mid 0.525; at 0.4 mid and dear
    tie at 0.5 (the cheaper wins); at 3 cheap -0.075 beats mid -0.15."""
    p = {"cheap": 0.3, "mid": 0.6, "dear": 0.9}
    assert choose_by_cost_weight(p, COSTS, cost_weight) == expected


def test_plan_names_the_arms_model_and_strategy() -> None:
    """The plan runs the chosen arm: its model alone, with its strategy, and says why."""
    policy = ComputeAwarePolicy(
        Table({"cheap": 0.2, "mid": 0.4, "dear": 0.7}), ARMS, rule="threshold", knob=0.5
    )
    plan = policy.plan(Query(text="What is 2 + 2?"))
    assert plan.models == ("large",)
    assert plan.strategy == SelfConsistencyConfig(n=5, max_tokens=64)
    assert plan.confidences == {"large": 0.7}
    assert "arm dear" in plan.reason
    assert policy.models() == frozenset({"small", "large"})


def test_cost_can_be_tokens() -> None:
    """With cost tokens the token table ranks the arms: "mid" is cheapest."""
    policy = ComputeAwarePolicy(
        Table({"cheap": 0.9, "mid": 0.9, "dear": 0.9}), ARMS, knob=0.5, cost="tokens"
    )
    assert policy.choose({"cheap": 0.9, "mid": 0.9, "dear": 0.9}) == "mid"


def test_policy_refuses_a_router_for_other_arms() -> None:
    """The router's columns must be the declared arms."""
    with pytest.raises(ValueError, match=r"router scores arms \['a', 'b'\]"):
        ComputeAwarePolicy(small_router(("a", "b")), ARMS, knob=0.5)  # type: ignore[arg-type]


def _config(**changes: Any) -> dict[str, Any]:
    policy = {
        "kind": "compute_aware",
        "router": "r",
        "rule": "threshold",
        "threshold": 0.5,
        "arms": [a.model_dump(mode="json") for a in ARMS],
        **changes,
    }
    return {
        "models": {
            "small": {"kind": "scripted", "responses": ["The answer is 4."]},
            "large": {"kind": "scripted", "responses": ["The answer is 4."]},
        },
        "policy": policy,
    }


@pytest.mark.parametrize(
    ("changes", "where"),
    [
        ({"threshold": 1.5}, "policy.compute_aware.threshold"),
        ({"cost": "watts"}, "policy.compute_aware.cost"),
        ({"rule": "cost_weight"}, "needs `cost_weight`"),
        ({"cost_weight": 0.2}, "`cost_weight` does not apply to rule threshold"),
        ({"arms": [{"name": "x", "model": "small", "strategy": {"kind": "greedy", "n": 3}}]},
         "policy.compute_aware.arms.0.strategy.greedy.n"),
        ({"arms": [{"name": "x", "model": "small"}]}, "policy.compute_aware.arms.0.strategy"),
        ({"arms": []}, "policy.compute_aware.arms"),
    ],
)  # fmt: skip
def test_yaml_errors_name_the_bad_field(changes: dict[str, Any], where: str) -> None:
    """Each bad value is reported at its key path (or names the missing key)."""
    with pytest.raises(ConfigError, match=where.replace(".", r"\.")):
        parse_config(_config(**changes), source="pool.yaml")


def test_arm_models_must_be_declared() -> None:
    """An arm on a model the config does not declare is refused at ``policy.arms`` (a
    profile's at its own path), naming the arm and the model."""
    config = _config()
    config["policy"]["arms"][0]["model"] = "ghost"
    with pytest.raises(ConfigError) as info:
        parse_config(config, source="pool.yaml")
    assert str(info.value).splitlines()[1] == (
        "  policy.arms: arm(s) 'cheap' name model(s) 'ghost' that are not declared under "
        "'models' (declared: large, small) (got {'cheap': 'ghost'})"
    )
    profiled = _config()
    profiled["profiles"] = {"routed": {"policy": config["policy"]}}
    with pytest.raises(ConfigError, match=r"  profiles\.routed\.policy\.arms: arm\(s\) 'cheap'"):
        parse_config(profiled, source="pool.yaml")


def test_the_example_configs_load() -> None:
    """The example YAMLs hold the same compute-aware arms (one router serves both), which
    one collection of a greedy answer and 3 samples per (item, model) labels."""
    root = Path(__file__).parents[3] / "examples" / "routing_agent"
    arms = []
    for name in ("compute_aware.yaml", "compute_aware_vllm.yaml"):
        config = parse_config(yaml.safe_load((root / name).read_text()), source=name)
        assert isinstance(config.policy, ComputeAwarePolicyConfig)
        settings = collection_settings(config.policy.arms)
        assert (settings.samples, settings.greedy) == (3, True)
        arms.append(config.policy.arms)
    assert arms[0] == arms[1]
    assert len(arms[0]) == 4


def test_a_router_trained_for_other_arms_is_a_build_error(tmp_path: Path) -> None:
    """Building checks the router's recorded arms before loading any embedder: other arm
    names, or an arm declared with another strategy, is a PolicyBuildError on router."""
    router = small_router(("cheap", "mid", "dear"))
    router.training["arms"] = {a.name: a.model_dump(mode="json") for a in ARMS}
    router.save(tmp_path / "r")
    config = ComputeAwarePolicyConfig.model_validate(
        {**_config(router=str(tmp_path / "r"))["policy"]}
    )
    renamed = config.model_copy(
        update={"arms": (*ARMS[:2], ARMS[2].model_copy(update={"name": "x"}))}
    )
    with pytest.raises(PolicyBuildError, match=r"trained for arms \['cheap', 'dear', 'mid'\]"):
        build_policy(renamed, GreedyConfig())
    other = ARMS[2].model_copy(update={"strategy": SelfConsistencyConfig(n=3, max_tokens=64)})
    changed = config.model_copy(update={"arms": (*ARMS[:2], other)})
    with pytest.raises(PolicyBuildError, match="arm 'dear' is declared as"):
        build_policy(changed, GreedyConfig())
    plain = small_router(("cheap", "mid", "dear"))
    plain.save(tmp_path / "plain")
    with pytest.raises(PolicyBuildError, match="not an arm router"):
        build_policy(config.model_copy(update={"router": tmp_path / "plain"}), GreedyConfig())


def test_config_knob_and_models() -> None:
    """The config's pool is the arms' models, each once; it plans no strategy of its own."""
    config = ComputeAwarePolicyConfig.model_validate(_config()["policy"])
    assert config.models == ("small", "large")
    assert config.strategy is None
    with pytest.raises(ValidationError, match="needs `threshold`"):
        ComputeAwarePolicyConfig.model_validate({**_config()["policy"], "threshold": None})
