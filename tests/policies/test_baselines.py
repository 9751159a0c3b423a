"""Baseline policies' plans, their YAML configs, and the cascade strategy's escalation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator import Orchestrator
from orchestrator.recorder import STEP_VERIFIER
from orchestrator.strategies.config import CascadeConfig, GreedyConfig, SelfConsistencyConfig
from orchestrator.types import Query
from policies import build_policy
from policies.baselines import (
    AllModelsPolicy,
    CascadePolicy,
    RandomSubsetPolicy,
    RoundRobinPolicy,
)
from system2.config import ConfigError, parse_config
from tests.orchestrator.strategies.test_step_verifier_use import ScriptedStepVerifier
from workers.base import Worker
from workers.scripted import ScriptedWorker, cycle_texts

MODELS = ("small", "medium", "large")
THREE_SAMPLES = SelfConsistencyConfig(n=3)


def test_all_models_plans_every_model() -> None:
    """The all-models baseline plans the whole pool for every query."""
    plan = AllModelsPolicy(MODELS, GreedyConfig()).plan(Query(text="q"))
    assert plan.models == MODELS


def test_random_subset_is_reproducible_per_query() -> None:
    """A random subset depends only on (seed, query id) and has k distinct models."""
    policy = RandomSubsetPolicy(MODELS, GreedyConfig(), k=2, seed=7)
    plans = [policy.plan(Query(text="q", id=f"id{i}")).models for i in range(20)]
    assert all(len(set(p)) == 2 and set(p) <= set(MODELS) for p in plans)
    assert plans == [policy.plan(Query(text="q", id=f"id{i}")).models for i in range(20)]
    assert len(set(plans)) > 1


def test_round_robin_cycles_through_models() -> None:
    """Round robin takes the models in turn, one per query."""
    policy = RoundRobinPolicy(MODELS, GreedyConfig())
    picked = [policy.plan(Query(text="q")).models for _ in range(4)]
    assert picked == [("small",), ("medium",), ("large",), ("small",)]


def test_policies_from_yaml_data() -> None:
    """Each baseline kind parses from config data and builds the matching policy."""
    models = {m: {"kind": "scripted", "responses": ["The answer is 1."]} for m in MODELS}
    for kind, cls in [("all", AllModelsPolicy), ("round_robin", RoundRobinPolicy)]:
        config = parse_config({"models": models, "policy": {"kind": kind, "models": list(MODELS)}})
        assert isinstance(build_policy(config.policy, config.strategy), cls)
    config = parse_config(
        {"models": models, "policy": {"kind": "random", "models": ["small", "large"], "k": 1}}
    )
    assert isinstance(build_policy(config.policy, config.strategy), RandomSubsetPolicy)


def test_random_k_larger_than_pool_is_refused() -> None:
    """A random subset bigger than its model list is a config error naming both numbers."""
    models = {m: {"kind": "scripted", "responses": ["x"]} for m in MODELS}
    with pytest.raises(ConfigError, match="k=4 is more than the 2 models"):
        parse_config(
            {"models": models, "policy": {"kind": "random", "models": ["small", "large"], "k": 4}}
        )


def _cascade(
    texts: dict[str, list[str]],
    min_margin: float,
    *,
    stage: SelfConsistencyConfig = THREE_SAMPLES,
    min_verifier_score: float | None = None,
    step_verifier: object | None = None,
) -> Orchestrator:
    workers: dict[str, Worker] = {m: ScriptedWorker(m, cycle_texts(t)) for m, t in texts.items()}
    strategy = CascadeConfig(
        stage=stage, min_margin=min_margin, min_verifier_score=min_verifier_score
    )
    return Orchestrator(
        workers,
        CascadePolicy(tuple(texts), strategy),
        step_verifier=step_verifier,  # type: ignore[arg-type]
    )


def _verified_cascade(
    texts: dict[str, list[str]], min_verifier_score: float, **stage: Any
) -> tuple[Orchestrator, ScriptedStepVerifier]:
    """A cascade whose stages must also pass the scripted step verifier (path score: min)."""
    verifier = ScriptedStepVerifier()
    orch = _cascade(
        texts,
        0.6,
        stage=SelfConsistencyConfig(n=3, **stage),
        min_verifier_score=min_verifier_score,
        step_verifier=verifier,
    )
    return orch, verifier


async def test_cascade_stops_at_the_first_decisive_model() -> None:
    """A unanimous cheap model answers alone; the expensive one is never called."""
    orch = _cascade({"small": ["The answer is 4."], "large": ["The answer is 5."]}, 0.6)
    answer = await orch.answer("q")
    assert answer.answer == "4"
    assert set(answer.usage.per_model) == {"small"}
    assert answer.trace.extra["cascade"] == [{"model": "small", "answer": "4", "margin": 1.0}]


async def test_cascade_escalates_on_a_split_vote() -> None:
    """A split vote on the cheap model escalates; the stronger model's answer is returned."""
    small = ["The answer is 1.", "The answer is 2.", "The answer is 3."]
    orch = _cascade({"small": small, "large": ["The answer is 9."]}, 0.6)
    answer = await orch.answer("q")
    assert answer.answer == "9"
    assert [s["model"] for s in answer.trace.extra["cascade"]] == ["small", "large"]
    assert len(answer.trace.candidates) == 6


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


async def test_cascade_escalates_a_unanimous_vote_the_verifier_rejects() -> None:
    """The scripted verifier scores steps without "Add one" 0.2: the cheap model's unanimous
    answer is escalated at min_verifier_score 0.5, and the stronger model's returned."""
    small = ["Let x be 3.\nThen 2x is 6.\nThe answer is 6."]
    large = ["Add one to 2x: 7.\nAdd one more step: the answer is 7."]
    orch, _ = _verified_cascade({"small": small, "large": large}, 0.5)
    answer = await orch.answer("q")
    assert answer.answer == "7"
    stages = answer.trace.extra["cascade"]
    assert [(s["model"], s["verifier_score"]) for s in stages] == [("small", 0.2), ("large", 0.9)]


async def test_cascade_stops_when_the_verifier_agrees() -> None:
    """Every step of the cheap model's path scores 0.9 >= 0.5: it answers alone."""
    small = ["Add one to 2x: 7.\nAdd one more step: the answer is 7."]
    orch, _ = _verified_cascade({"small": small, "large": ["The answer is 6."]}, 0.5)
    answer = await orch.answer("q")
    assert answer.answer == "7"
    assert set(answer.usage.per_model) == {"small", STEP_VERIFIER}


async def test_cascade_reuses_the_path_scores_of_a_verifier_vote() -> None:
    """A stage that voted with the verifier has scored every path: the chosen one's score is
    read from the vote (3 scored paths, not 4), and it still decides the escalation."""
    small = ["Let x be 3.\nThen 2x is 6.\nThe answer is 6."]
    texts = {"small": small, "large": ["The answer is 6."]}
    orch, verifier = _verified_cascade(texts, 0.1, vote="verifier")
    answer = await orch.answer("q")
    assert answer.trace.extra["cascade"] == [
        {"model": "small", "answer": "6", "margin": 1.0, "verifier_score": 0.2}
    ]
    assert len(verifier.calls) == 3
