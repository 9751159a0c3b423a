"""The ``system2`` strategy: config, verifier checks, guided greedy and guided SC."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator import Orchestrator
from orchestrator.strategies import GreedyConfig, VerifierGuidedConfig
from policies import FixedPolicy
from system2.config import ConfigError, load_config, parse_config
from tests.workers.verifier.byte_model import ByteTokenizer, byte_model
from tests.workers.verifier.helpers import randomize_head
from workers.base import GenerateRequest
from workers.scripted import ScriptedWorker
from workers.transformers_worker import TransformersWorker
from workers.verifier import TokenVerifier

YAML = """
models:
  m:
    kind: scripted
    responses: ["The answer is 4."]
policy: {kind: fixed, models: [m]}
strategy:
  kind: system2
  beta: 0.5
  alpha: 0.2
  top_k: 4
  n: 3
  temperature: 0.7
  max_tokens: 64
  seed: 1
"""


def test_system2_config_loads_from_yaml(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(YAML)
    strategy = load_config(path).strategy
    assert isinstance(strategy, VerifierGuidedConfig)
    assert (strategy.beta, strategy.alpha, strategy.top_k, strategy.n) == (0.5, 0.2, 4, 3)
    assert VerifierGuidedConfig().temperature == 0.0
    assert VerifierGuidedConfig().n == 1


def test_sampling_needs_a_temperature_and_alpha_zero_a_cap() -> None:
    with pytest.raises(ConfigError, match="temperature > 0"):
        parse_config(_config({"kind": "system2", "n": 5}))
    with pytest.raises(ConfigError, match="top_k cap"):
        parse_config(_config({"kind": "system2", "alpha": 0.0, "top_k": 0}))


def _config(
    strategy: dict[str, object], model: dict[str, object] | None = None
) -> dict[str, object]:
    return {
        "models": {"qwen-tiny": model or {"kind": "scripted", "responses": ["4"]}},
        "policy": {"kind": "fixed", "models": ["qwen-tiny"]},
        "strategy": strategy,
    }


def test_a_transformers_model_without_verifier_is_a_config_error() -> None:
    model: dict[str, object] = {"kind": "transformers", "model": "some-model"}
    with pytest.raises(ConfigError, match=r"'qwen-tiny'.*verifier: \{path: DIR\}"):
        parse_config(_config({"kind": "system2"}, model))
    parse_config(_config({"kind": "system2"}, {**model, "verifier": {"path": "/v"}}))
    parse_config(_config({"kind": "greedy"}, model))  # other strategies need none


async def test_a_worker_without_verifier_fails_naming_the_model() -> None:
    """A worker with no verifier refuses the guided request: the query is recorded as
    failed, the reason naming the model and the missing verifier, and nothing is run."""
    worker = ScriptedWorker("plain", lambda request, i: "The answer is 4.")
    orch = Orchestrator({"plain": worker}, FixedPolicy(("plain",), VerifierGuidedConfig()))
    answer = await orch.answer("What is 2 + 2?")
    assert answer.status == "failed"
    assert answer.answer is None
    (failure,) = answer.trace.failures
    assert "plain" in failure
    assert "verifier" in failure
    assert worker.requests == []  # refused before any generation


async def test_guided_sc_votes_over_guided_samples() -> None:
    answers = ["The answer is 4.", "The answer is 5.", "The answer is 4."]
    worker = ScriptedWorker("g", lambda request, i: answers[i], guidance=True)
    config = VerifierGuidedConfig(n=3, temperature=0.7, seed=9, beta=0.5)
    answer = await Orchestrator({"g": worker}, FixedPolicy(("g",), config)).answer("2 + 2?")
    assert answer.answer == "4"
    assert answer.trace.vote is not None
    assert answer.trace.vote.counts == {"4": 2.0, "5": 1.0}
    (request,) = worker.requests
    assert isinstance(request, GenerateRequest)
    params = request.params
    assert params.n == 3
    assert params.seed == 9
    assert params.guidance is not None
    assert params.guidance.beta == 0.5
    assert answer.trace.extra["guidance"]["beta"] == 0.5


async def test_beta_zero_through_the_orchestrator_equals_greedy() -> None:
    verifier = randomize_head(TokenVerifier.from_generator(byte_model()), 0)
    worker = TransformersWorker(byte_model(), ByteTokenizer(), model_name="tiny", verifier=verifier)
    try:
        texts = []
        for strategy in (
            GreedyConfig(max_tokens=12),
            VerifierGuidedConfig(beta=0.0, max_tokens=12),
            VerifierGuidedConfig(beta=4.0, alpha=0.0, top_k=5, max_tokens=12),
        ):
            orch = Orchestrator({"tiny": worker}, FixedPolicy(("tiny",), strategy))
            texts.append((await orch.answer("What is 2 + 2?")).trace.candidates[0].text)
    finally:
        await worker.close()
    assert texts[1] == texts[0]
    assert texts[2] != texts[0]  # a strong verifier does change greedy decoding
