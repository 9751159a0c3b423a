"""The compute-aware policy from YAML through every entry point: ``system2 ask``,
``system2 eval`` and the server ``system2 serve`` builds, on scripted workers.

The arm router is hand-set, so every choice can be worked out: over the word-hash
stand-in for MiniLM (``tests.policies.selectllm.test_router``), its one hidden unit is the
embedding's sum h (about the square root of the number of distinct words), and the arms'
calibrated P are ``small-greedy`` sigmoid(10 - 4 h), ``large-greedy`` 0.7, ``large-sc3``
0.97, at mean costs 1, 2 and 6 seconds. At threshold 0.5 short questions (h < 2.5) take
the small model's greedy arm and longer ones the large model's; at 0.95 every question
takes the large model's SC@3 arm.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from policies.selectllm.compute_aware import ComputeAwarePolicyConfig
from policies.selectllm.router import PlattCalibration, QueryRouter, RouterHead
from system2 import assembly
from system2.cli.main import app as cli
from system2.config import ModelConfig, load_config
from system2.evaluation import read_records
from system2.server.runner import CONFIG_ENV, app_from_env
from tests.policies.selectllm.test_router import WordHashEmbedder
from tests.system2.server.conftest import chat, client_for
from workers.base import GenerateRequest, Worker
from workers.scripted import ScriptedWorker

ARM_MODELS = {"small-greedy": "small", "large-greedy": "large", "large-sc3": "large"}
COSTS = {"small-greedy": 1.0, "large-greedy": 2.0, "large-sc3": 6.0}
FIXED_P = {"large-greedy": 0.7, "large-sc3": 0.97}
ANSWERS = {"small": "4", "large": "5"}  # what each scripted model always says

CONFIG = """\
models:
  small: {{kind: scripted, responses: ["2 + 2 = 4. The answer is 4."]}}
  large: {{kind: scripted, responses: ["The answer is 5."]}}
policy: &routed
  kind: compute_aware
  router: {router}
  rule: threshold
  threshold: {threshold}
  cost: seconds
  arms:
    - {{name: small-greedy, model: small, strategy: {{kind: greedy, max_tokens: 32}}}}
    - {{name: large-greedy, model: large, strategy: {{kind: greedy, max_tokens: 32}}}}
    - name: large-sc3
      model: large
      strategy: {{kind: self_consistency, n: 3, temperature: 0.7, max_tokens: 32, seed: 0}}
profiles:
  routed: {{description: the config's compute-aware policy}}
  accurate:
    policy: {{<<: *routed, threshold: 0.95}}
logging: {{level: warning}}
"""


def write_config(directory: Path, router: Path, threshold: float) -> Path:
    path = directory / f"compute_aware_{threshold:g}.yaml"
    path.write_text(CONFIG.format(router=router, threshold=threshold))
    return path


def logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def hidden(text: str) -> float:
    """The router's one hidden unit for ``text``: its word-hash embedding's sum."""
    return float(WordHashEmbedder().embed([text]).sum())


def small_p(text: str) -> float:
    return 1.0 / (1.0 + math.exp(-(10.0 - 4.0 * hidden(text))))


def expected_arm(text: str, threshold: float) -> str:
    """The threshold rule worked by hand: the cheapest arm clearing it, else the likeliest."""
    p = {"small-greedy": small_p(text), **FIXED_P}
    cleared = [a for a in sorted(COSTS, key=COSTS.__getitem__) if p[a] >= threshold]
    return cleared[0] if cleared else max(p, key=p.__getitem__)


def samples(worker: ScriptedWorker) -> int:
    """Completions ``worker`` was asked for (every request is a generation here)."""
    assert all(isinstance(r, GenerateRequest) for r in worker.requests)
    return sum(r.params.n for r in worker.requests if isinstance(r, GenerateRequest))


def hand_set_router(arms: dict[str, Any]) -> QueryRouter:
    """The router of the module docstring, recording ``arms`` (name -> ArmConfig JSON) as
    its training arms, as ``system2 router train --arms`` does."""
    embedder = WordHashEmbedder()
    names = tuple(COSTS)
    head = RouterHead(embedder.dim, 1, len(names), dropout=0.0)
    with torch.no_grad():
        first, last = head.layers[0], head.layers[3]
        assert isinstance(first, torch.nn.Linear)
        assert isinstance(last, torch.nn.Linear)
        first.weight.fill_(1.0)
        first.bias.zero_()
        last.weight.copy_(torch.tensor([[-4.0], [0.0], [0.0]]))
        last.bias.copy_(torch.tensor([10.0, logit(FIXED_P["large-greedy"]), logit(0.97)]))
    return QueryRouter(
        head,
        embedder,
        models=names,
        latency=COSTS,
        tokens={n: 10.0 * c for n, c in COSTS.items()},
        calibration=PlattCalibration.identity(names),
        training={"arms": arms},
    )


@pytest.fixture(scope="module")
def router_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The router saved where the YAML points, its arms recorded from that YAML."""
    directory = tmp_path_factory.mktemp("compute_aware")
    router = directory / "router"
    config = load_config(write_config(directory, router, 0.5))
    assert isinstance(config.policy, ComputeAwarePolicyConfig)
    arms = {a.name: a.model_dump(mode="json") for a in config.policy.arms}
    hand_set_router(arms).save(router)
    return router


@pytest.fixture(autouse=True)
def word_hash_embedder(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading the router's embedder by its recorded name gives the word-hash stand-in."""
    from workers.embedder import SentenceEmbedder

    def load(name: str, **_: Any) -> WordHashEmbedder:
        if name != WordHashEmbedder.name:
            raise AssertionError(f"the router asked for embedder {name!r}")
        return WordHashEmbedder()

    monkeypatch.setattr(SentenceEmbedder, "load", staticmethod(load))


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> dict[str, ScriptedWorker]:
    """The scripted workers the entry point under test builds from the YAML, by model."""
    workers: dict[str, ScriptedWorker] = {}
    build = assembly.build_worker

    def recording(name: str, config: ModelConfig, **kwargs: Any) -> Worker:
        worker = build(name, config, **kwargs)
        assert isinstance(worker, ScriptedWorker)
        workers[name] = worker
        return worker

    monkeypatch.setattr(assembly, "build_worker", recording)
    return workers


def test_the_hand_set_router_gives_the_documented_probabilities(router_dir: Path) -> None:
    """Loaded back, the router's P are those the module docstring works with."""
    router = QueryRouter.load(router_dir, WordHashEmbedder())
    (p,) = router.confidences(["What is 2 + 2?"])
    assert p["small-greedy"] == pytest.approx(small_p("What is 2 + 2?"), rel=1e-5)
    assert p["small-greedy"] == pytest.approx(0.92, abs=0.01)
    assert (p["large-greedy"], p["large-sc3"]) == pytest.approx((0.7, 0.97), rel=1e-5)
    assert router.latency == COSTS


@pytest.mark.parametrize(
    ("question", "threshold", "arm", "drawn"),
    [
        ("What is 2 + 2?", 0.5, "small-greedy", 1),  # h 1.89: P 0.92 clears 0.5
        ("Calculate ( 56 + -33 ) - 84.", 0.5, "large-greedy", 1),  # h 2.83: P 0.21
        ("What is 2 + 2?", 0.95, "large-sc3", 3),  # only the SC@3 arm's 0.97 clears it
    ],
)
def test_ask_answers_with_the_arm_the_policy_picks(
    question: str,
    threshold: float,
    arm: str,
    drawn: int,
    router_dir: Path,
    tmp_path: Path,
    cli_runner: CliRunner,
    built: dict[str, ScriptedWorker],
) -> None:
    """`system2 ask` runs the chosen arm: only its scripted model gets requests (as many
    samples as its strategy draws), the answer is that model's, the plan names the arm."""
    assert expected_arm(question, threshold) == arm
    config = write_config(tmp_path, router_dir, threshold)
    result = cli_runner.invoke(cli, ["ask", question, "--config", str(config), "--json"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    model = ARM_MODELS[arm]
    other = next(m for m in built if m != model)
    assert samples(built[model]) == drawn
    assert built[other].requests == []
    assert answer["answer"] == ANSWERS[model]
    plan = answer["trace"]["plan"]
    assert plan["models"] == [model]
    assert f"arm {arm} " in plan["reason"]
    assert plan["strategy"]["kind"] == ("greedy" if drawn == 1 else "self_consistency")
    assert {g["model"] for g in answer["trace"]["generations"]} == {model}


def test_eval_records_the_chosen_arm_per_item(
    router_dir: Path, tmp_path: Path, cli_runner: CliRunner, built: dict[str, ScriptedWorker]
) -> None:
    """`system2 eval` at threshold 0.5: each item's record plans the arm its question
    calls for (short questions the small model, long ones the large), both arms occur, and
    the run file is tied to the threshold (another one does not resume it)."""
    config = write_config(tmp_path, router_dir, 0.5)
    out = tmp_path / "run.jsonl"
    args = ["eval", "basic_arithmetic", "--limit", "6", "--seed", "0", "--out", str(out)]
    result = cli_runner.invoke(cli, [*args, "--config", str(config)])
    assert result.exit_code == 0, result.output
    header, records = read_records(out)
    assert header is not None
    assert header["config"]["policy"]["kind"] == "compute_aware"
    assert len(records) == 6
    chosen = {}
    for record in records.values():
        arm = expected_arm(record["question"], 0.5)
        plan = record["trace"]["plan"]
        assert f"arm {arm} " in plan["reason"], (record["question"], plan["reason"])
        assert plan["models"] == [ARM_MODELS[arm]]
        assert record["predicted"] == ANSWERS[ARM_MODELS[arm]]
        chosen[record["id"]] = arm
    assert set(chosen.values()) == {"small-greedy", "large-greedy"}
    small_items = sum(arm == "small-greedy" for arm in chosen.values())
    assert (samples(built["small"]), samples(built["large"])) == (small_items, 6 - small_items)

    refused = cli_runner.invoke(
        cli, [*args, "--config", str(write_config(tmp_path, router_dir, 0.95))]
    )
    assert refused.exit_code == 2
    assert read_records(out)[1] == records


async def test_server_answers_through_the_compute_aware_profiles(
    router_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app `system2 serve` builds from the YAML answers a chat completion with each
    compute-aware profile: `routed` (threshold 0.5) sends a short question to the small
    model's greedy arm, `accurate` (0.95) to the large model's SC@3; the `system2` field's
    plan names the arm, and only that arm's scripted model is called."""
    monkeypatch.setenv(CONFIG_ENV, str(write_config(tmp_path, router_dir, 0.5)))
    monkeypatch.delenv("SYSTEM2_API_KEYS", raising=False)
    app = app_from_env()
    workers = app.state.system2.served.workers
    assert set(workers) == {"small", "large"}
    async with client_for(app) as client:
        routed = await client.post("/v1/chat/completions", json=chat("routed"))
        assert routed.status_code == 200, routed.text
        body = routed.json()
        assert body["system2"]["profile"] == "routed"
        assert "arm small-greedy " in body["system2"]["plan"]["reason"]
        assert body["choices"][0]["message"]["content"] == "2 + 2 = 4. The answer is 4."
        assert (samples(workers["small"]), samples(workers["large"])) == (1, 0)

        accurate = await client.post("/v1/chat/completions", json=chat("accurate"))
        assert accurate.status_code == 200, accurate.text
        summary = accurate.json()["system2"]
        assert "arm large-sc3 " in summary["plan"]["reason"]
        assert summary["plan"]["strategy"]["n"] == 3
        assert summary["answer"] == "5"
        assert summary["vote"]["counts"] == {"5": 3.0}
        assert samples(workers["small"]) == 1
        assert samples(workers["large"]) == 3
