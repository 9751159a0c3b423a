"""The SelectLLM policy: its plans per rule, its guards, its YAML config, and building it
from a config (a bad router is a config error naming file, key path and value)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from orchestrator.orchestrator import Orchestrator
from orchestrator.strategies.config import GreedyConfig, SelfConsistencyConfig
from orchestrator.types import Query
from policies.config import build_policy
from policies.errors import PolicyBuildError
from policies.selectllm.policy import SelectLLMPolicy, rule_strategy_conflict
from system2.assembly import build_orchestrator
from system2.config import ConfigError, load_config
from tests.policies.selectllm.test_router import small_router
from workers.scripted import ScriptedWorker, cycle_texts


@dataclass
class ConfidenceTable:
    """A hand-made confidence source: fixed confidences per query text."""

    table: dict[str, dict[str, float]]
    latency: dict[str, float] = field(
        default_factory=lambda: {"small": 1.0, "medium": 2.0, "large": 4.0}
    )

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(self.latency)

    def confidences(self, texts: Sequence[str]) -> list[dict[str, float]]:
        return [dict(self.table[t]) for t in texts]


# --- the policy -------------------------------------------------------------------------

TABLE = ConfidenceTable(
    {
        "easy": {"small": 0.9, "medium": 0.8, "large": 0.95},
        "hard": {"small": 0.1, "medium": 0.3, "large": 0.3},
        "mid": {"small": 0.2, "medium": 0.7, "large": 0.6},
    }
)
SC = SelfConsistencyConfig(n=3)


def plan(rule: Any, text: str, **kwargs: Any) -> Any:
    return SelectLLMPolicy(TABLE, rule, SC, **kwargs).plan(Query(text=text))


def test_maxconf_plans_the_top_k_models() -> None:
    """MAXCONF plans the k most confident models, without vote weights."""
    result = plan("maxconf", "easy", k=2)
    assert result.models == ("large", "small")
    assert result.vote_weights == {}
    assert result.confidences == TABLE.table["easy"]
    assert result.reason.startswith("MAXCONF")
    assert plan("maxconf", "hard").models == ("medium",)  # tie with large: lower latency


def test_maxconf_with_a_threshold_plans_every_model_above_it() -> None:
    """MAXCONF with a threshold plans all models at or above it, at least the top one."""
    assert plan("maxconf", "easy", threshold=0.85).models == ("large", "small")
    assert plan("maxconf", "hard", threshold=0.85).models == ("medium",)


def test_labelled_maxconf_plans_positive_models_or_the_most_confident() -> None:
    """LABELLEDMAXCONF plans models above 0.5 (capped by max_models), else the top one."""
    assert plan("labelled_maxconf", "mid").models == ("medium", "large")
    assert plan("labelled_maxconf", "easy", max_models=2).models == ("large", "small")
    assert plan("labelled_maxconf", "hard").models == ("medium",)
    assert plan("labelled_maxconf", "mid").vote_weights == {}


def test_weighted_maxconf_sets_confidences_as_vote_weights() -> None:
    """WEIGHTEDMAXCONF plans the labelled models and weighs each one's votes by confidence."""
    result = plan("weighted_maxconf", "mid")
    assert result.models == ("medium", "large")
    assert result.vote_weights == {"medium": 0.7, "large": 0.6}


def scripted_pool() -> dict[str, ScriptedWorker]:
    def says(model: str, *answers: str) -> ScriptedWorker:
        return ScriptedWorker(model, cycle_texts([f"The answer is {a}." for a in answers]))

    return {
        "small": says("small", "1"),
        "medium": says("medium", "2"),
        "large": says("large", "3", "1", "3"),
    }


async def test_weighted_vote_follows_the_confident_model_where_a_plain_vote_does_not() -> None:
    """Run end to end, the confident model's answer wins the weighted vote, while the same
    samples under LABELLEDMAXCONF (one vote each) elect the crowd's answer."""
    table = ConfidenceTable({"q": {"small": 0.55, "medium": 0.95, "large": 0.6}})
    strategy = SelfConsistencyConfig(n=3)
    weighted = SelectLLMPolicy(table, "weighted_maxconf", strategy)
    answer = await Orchestrator(scripted_pool(), weighted).answer(Query(text="q"))
    assert answer.trace.plan["models"] == ["medium", "large", "small"]
    assert answer.trace.vote is not None
    assert answer.trace.vote.counts == pytest.approx({"2": 2.85, "1": 2.25, "3": 1.2})
    assert answer.answer == "2"
    plain = SelectLLMPolicy(table, "labelled_maxconf", strategy)
    assert (await Orchestrator(scripted_pool(), plain).answer(Query(text="q"))).answer == "1"


def test_policy_models_are_the_router_pool() -> None:
    """The policy declares the router's pool, so the orchestrator checks it has workers."""
    policy = SelectLLMPolicy(TABLE, "maxconf", SC)
    assert policy.models() == {"small", "medium", "large"}
    with pytest.raises(ValueError, match="large"):
        Orchestrator({"small": ScriptedWorker("small", cycle_texts(["1"]))}, policy)


def test_policy_refuses_bad_rule_arguments() -> None:
    """Unknown rules, arguments of another rule, and a weighted vote without voting fail."""
    with pytest.raises(ValueError, match="unknown rule"):
        SelectLLMPolicy(TABLE, "best", SC)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="k applies to rule maxconf"):
        SelectLLMPolicy(TABLE, "labelled_maxconf", SC, k=2)
    with pytest.raises(ValueError, match="not both"):
        SelectLLMPolicy(TABLE, "maxconf", SC, k=2, threshold=0.5)
    with pytest.raises(ValueError, match="self_consistency"):
        SelectLLMPolicy(TABLE, "weighted_maxconf", GreedyConfig())


# --- YAML config ------------------------------------------------------------------------


def write_config(tmp_path: Path, policy: str, models: Sequence[str] = ("arith", "words")) -> Path:
    declared = "".join(
        f"  {m}: {{kind: scripted, responses: ['The answer is 1.']}}\n" for m in models
    )
    path = tmp_path / "config.yaml"
    path.write_text(f"models:\n{declared}policy:\n  kind: selectllm\n{policy}")
    return path


def test_yaml_unknown_rule_lists_the_valid_ones(tmp_path: Path) -> None:
    """An unknown rule is a config error naming the rules there are."""
    path = write_config(tmp_path, "  models: [arith, words]\n  router: r\n  rule: cheapest\n")
    with pytest.raises(
        ConfigError, match=r"policy\.selectllm\.rule.*'maxconf'.*'weighted_maxconf'"
    ):
        load_config(path)


def test_yaml_rule_arguments_are_checked_when_loading(tmp_path: Path) -> None:
    """k on a labelled rule, and a weighted rule with a greedy strategy, fail at load."""
    path = write_config(
        tmp_path, "  models: [arith, words]\n  router: r\n  rule: labelled_maxconf\n  k: 2\n"
    )
    with pytest.raises(ConfigError, match="k applies to rule maxconf"):
        load_config(path)
    path = write_config(
        tmp_path,
        "  models: [arith, words]\n  router: r\n  rule: weighted_maxconf\n"
        "  strategy: {kind: greedy}\n",
    )
    with pytest.raises(ConfigError, match="self_consistency"):
        load_config(path)


def test_yaml_loading_does_not_touch_the_router(tmp_path: Path) -> None:
    """Loading a config only validates it: a router path that does not exist yet is fine."""
    path = write_config(tmp_path, "  models: [arith, words]\n  router: absent\n  rule: maxconf\n")
    assert load_config(path).policy.models == ("arith", "words")


def test_yaml_missing_router_fails_at_build_naming_the_path(tmp_path: Path) -> None:
    """Building the policy with no router at the path is a PolicyBuildError naming the key
    and the path."""
    path = write_config(
        tmp_path, f"  models: [arith, words]\n  router: {tmp_path / 'absent'}\n  rule: maxconf\n"
    )
    config = load_config(path)
    with pytest.raises(PolicyBuildError, match="absent") as info:
        build_policy(config.policy, config.strategy)
    assert (info.value.key, info.value.value) == ("router", tmp_path / "absent")
    assert "no router directory" in info.value.problem


def test_yaml_missing_router_through_assembly_names_file_key_and_path(tmp_path: Path) -> None:
    """Through ``build_orchestrator`` a router that cannot be read is a ConfigError naming
    the config file, ``policy.router`` and the path given."""
    absent = tmp_path / "absent"
    path = write_config(
        tmp_path, f"  models: [arith, words]\n  router: {absent}\n  rule: maxconf\n"
    )
    with pytest.raises(ConfigError) as info:
        build_orchestrator(load_config(path))
    assert str(info.value) == f"{path}: policy.router ({absent}): no router directory at {absent}"


def test_yaml_damaged_router_through_assembly_names_file_and_key(tmp_path: Path) -> None:
    """A damaged router (here: no weights) is a ConfigError with the file, the key path and
    what is wrong with the router."""
    small_router().save(tmp_path / "router")
    (tmp_path / "router" / "head.safetensors").unlink()
    path = write_config(
        tmp_path, f"  models: [arith, words]\n  router: {tmp_path / 'router'}\n  rule: maxconf\n"
    )
    with pytest.raises(
        ConfigError, match=rf"^{re.escape(str(path))}: policy\.router \(.*router\): .*missing head"
    ):
        build_orchestrator(load_config(path))


def test_yaml_router_for_another_pool_is_refused_naming_both_sides(tmp_path: Path) -> None:
    """A router trained on other models is refused with both model lists in the error."""
    small_router(("arith", "poetry")).save(tmp_path / "router")
    path = write_config(
        tmp_path, f"  models: [arith, words]\n  router: {tmp_path / 'router'}\n  rule: maxconf\n"
    )
    with pytest.raises(ConfigError, match=r"\['arith', 'poetry'\].*\['arith', 'words'\]") as info:
        build_orchestrator(load_config(path))
    assert str(info.value).startswith(f"{path}: policy.router ({tmp_path / 'router'}): ")


def test_yaml_policy_model_not_declared_is_refused(tmp_path: Path) -> None:
    """A policy model missing from the config's models is refused, naming both."""
    path = write_config(
        tmp_path, "  models: [arith, words]\n  router: r\n  rule: maxconf\n", models=("arith",)
    )
    with pytest.raises(ConfigError, match=r"'words'.*declared: arith"):
        load_config(path)


# --- the weighted rule and its strategy, checked once at load time ---------------------


def test_rule_strategy_conflict_says_whether_a_rule_fits_a_strategy() -> None:
    """Only weighted_maxconf constrains the strategy: it needs self_consistency."""
    assert rule_strategy_conflict("weighted_maxconf", SC) is None
    assert rule_strategy_conflict("maxconf", GreedyConfig()) is None
    assert rule_strategy_conflict("labelled_maxconf", GreedyConfig()) is None
    conflict = rule_strategy_conflict("weighted_maxconf", GreedyConfig())
    assert conflict is not None
    assert "self_consistency" in conflict
    assert "greedy" in conflict


def test_yaml_weighted_rule_with_its_own_strategy_names_key_path_and_value(
    tmp_path: Path,
) -> None:
    """A weighted rule whose policy sets a greedy strategy fails at load, at
    policy.strategy.kind with the value given, in the named file."""
    path = write_config(
        tmp_path,
        "  models: [arith, words]\n  router: r\n  rule: weighted_maxconf\n"
        "  strategy: {kind: greedy}\n",
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: invalid config (1 error(s))")
    assert "  policy.strategy.kind: rule weighted_maxconf votes" in message
    assert message.endswith("(got 'greedy')")


def test_yaml_weighted_rule_with_a_default_strategy_that_does_not_vote(tmp_path: Path) -> None:
    """The config's default strategy counts when the policy sets none: a greedy default is
    refused at load, at key path strategy.kind, before any router is read."""
    path = write_config(
        tmp_path, "  models: [arith, words]\n  router: absent\n  rule: weighted_maxconf\n"
    )
    path.write_text(path.read_text() + "strategy: {kind: greedy}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "  strategy.kind: rule weighted_maxconf votes" in message
    assert message.endswith("(got 'greedy')")


def test_yaml_weighted_rule_with_the_self_consistency_default_loads(tmp_path: Path) -> None:
    """With no strategy anywhere the default is self_consistency, which the rule fits."""
    path = write_config(
        tmp_path, "  models: [arith, words]\n  router: absent\n  rule: weighted_maxconf\n"
    )
    config = load_config(path)
    assert isinstance(config.planned_strategy, SelfConsistencyConfig)
