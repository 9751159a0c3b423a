"""Format-2 label collection with scripted workers: the ordered samples, every answer
judged, the greedy answer, arm labels read back from the file, and old files refused by
name for arms."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import structlog
import yaml
from typer.testing import CliRunner

from orchestrator.types import Query
from policies.selectllm.arms import ArmConfig, ArmLabelError, arm_label_records, arm_outcomes
from policies.selectllm.train import train_router
from system2.assembly import build_orchestrator
from system2.config import load_config
from system2.evaluation import EvalItem
from system2.pipelines.router_labels import LABELS_FORMAT, collect_labels, read_labels
from tests.policies.selectllm.test_train import ConstantEmbedder
from workers.base import GenerateRequest
from workers.scripted import ScriptedWorker

ITEMS = [
    EvalItem(id=f"q{i}", query=Query(id=f"q{i}", text=f"What is {i} + 2?"), gold=str(i + 2))
    for i in range(4)
]


def number(request: GenerateRequest) -> int:
    prompt = request.prompt
    text = prompt if isinstance(prompt, str) else prompt[-1].content
    return next(i for i in range(len(ITEMS)) if ITEMS[i].query.text in text)


def slow_starter(request: GenerateRequest, index: int) -> str:
    """Greedy is wrong (99); the samples go wrong, right, wrong, right, right: SC@1 and
    SC@3 are wrong (99 leads 2-1), SC@5 is right (3 votes to 2)."""
    i = number(request)
    if request.params.temperature == 0.0:
        return "The answer is 99."
    return "The answer is 99." if index in (0, 2) else f"The answer is {i + 2}."


def steady(request: GenerateRequest, index: int) -> str:
    """Right every time, greedy or sampled."""
    return f"The answer is {number(request) + 2}."


def workers() -> dict[str, ScriptedWorker]:
    return {
        "slow": ScriptedWorker("slow", slow_starter, seconds_per_call=1.0),
        "steady": ScriptedWorker("steady", steady, seconds_per_call=0.25),
    }


def arm(name: str, model: str, n: int = 0) -> ArmConfig:
    strategy = (
        {"kind": "greedy", "max_tokens": 64}
        if n == 0
        else {"kind": "self_consistency", "n": n, "max_tokens": 64}
    )
    return ArmConfig(name=name, model=model, strategy=strategy)


async def test_records_keep_ordered_samples_judgements_and_greedy(tmp_path: Path) -> None:
    """Each pair keeps its samples in order with their tokens, every answer judged, and
    the greedy answer with its own cost; the majority label is unchanged."""
    out = tmp_path / "labels.jsonl"
    await collect_labels(
        ITEMS, workers(), out, samples=5, max_tokens=64, greedy=True, progress=False
    )
    header, records = read_labels(out)
    assert header is not None
    assert header["format"] == LABELS_FORMAT
    assert header["greedy"] == {"kind": "greedy", "max_tokens": 64}
    r = records[("q1", "slow")]
    assert [s["answer"] for s in r["samples"]] == ["99", "3", "99", "3", "3"]
    assert all(s["tokens"] > 0 for s in r["samples"])
    assert r["judged"] == {"99": False, "3": True}
    assert r["greedy"]["answer"] == "99"
    assert r["greedy"]["seconds"] == 1.0
    assert r["label"] == 1
    assert r["completion_tokens"] == sum(s["tokens"] for s in r["samples"])


async def test_one_collection_labels_greedy_and_sc_at_several_k(tmp_path: Path) -> None:
    """From 5 collected samples: SC@1 and SC@3 wrong, SC@5 right, greedy wrong, for the
    slow starter; every arm of the steady model right."""
    out = tmp_path / "labels.jsonl"
    await collect_labels(
        ITEMS, workers(), out, samples=5, max_tokens=64, greedy=True, progress=False
    )
    header, records = read_labels(out)
    assert header is not None
    arms = [
        arm("slow-greedy", "slow"),
        arm("slow-sc1", "slow", 1),
        arm("slow-sc3", "slow", 3),
        arm("slow-sc5", "slow", 5),
        arm("steady-greedy", "steady"),
    ]
    outcomes = arm_outcomes(header, list(records.values()), arms)
    assert sorted(outcomes) == ["q0", "q1", "q2", "q3"]
    right = {name: o.correct for name, o in outcomes["q2"].items()}
    assert right == {
        "slow-greedy": False, "slow-sc1": False, "slow-sc3": False, "slow-sc5": True,
        "steady-greedy": True,
    }  # fmt: skip
    sc5 = outcomes["q2"]["slow-sc5"]
    sc3 = outcomes["q2"]["slow-sc3"]
    assert sc3.tokens < sc5.tokens
    assert sc3.seconds == pytest.approx(sc5.seconds * sc3.tokens / sc5.tokens)


async def test_an_old_labels_file_is_refused_for_arms_by_name(tmp_path: Path) -> None:
    """A format-1 file (no ordered samples) still reads, but labelling arms from it says
    why not and how to collect what is needed."""
    out = tmp_path / "labels.jsonl"
    await collect_labels(ITEMS[:1], workers(), out, samples=3, max_tokens=64, progress=False)
    lines = out.read_text().splitlines()
    header = json.loads(lines[0])
    del header["format"]
    old = tmp_path / "old.jsonl"
    old.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    old_header, records = read_labels(old)
    assert old_header is not None
    with pytest.raises(ArmLabelError, match=r"format 1 .*collect --greedy"):
        arm_outcomes(old_header, list(records.values()), [arm("s", "slow", 3)])


async def test_no_greedy_collected_refuses_greedy_arms(tmp_path: Path) -> None:
    """Without --greedy the header says so and a greedy arm is refused."""
    out = tmp_path / "labels.jsonl"
    await collect_labels(ITEMS[:1], workers(), out, samples=3, max_tokens=64, progress=False)
    header, records = read_labels(out)
    assert header is not None
    assert header["greedy"] is None
    with pytest.raises(ArmLabelError, match="no greedy answers collected"):
        arm_outcomes(header, list(records.values()), [arm("g", "slow")])


async def test_training_on_arms_warns_when_an_arm_stays_constant(tmp_path: Path) -> None:
    """Trained on arm columns with features that say nothing, calibration leaves each arm's
    P constant, and the warning names the arm."""
    out = tmp_path / "labels.jsonl"
    await collect_labels(
        ITEMS, workers(), out, samples=3, max_tokens=64, greedy=True, progress=False
    )
    header, records = read_labels(out)
    assert header is not None
    arms = [arm("slow-greedy", "slow"), arm("slow-sc3", "slow", 3), arm("steady-sc1", "steady", 1)]
    rows = arm_label_records(header, list(records.values()), arms)
    with structlog.testing.capture_logs() as logs:
        router, metrics = train_router(
            rows, ConstantEmbedder(), seed=0, epochs=3, models=[a.name for a in arms]
        )
    warned = {e["model"] for e in logs if e["event"] == "router.train.constant_confidence"}
    assert warned == {"slow-greedy", "slow-sc3", "steady-sc1"}
    assert router.models == ("slow-greedy", "slow-sc3", "steady-sc1")
    assert metrics.val_items + metrics.calibration_items + metrics.train_items == len(ITEMS)


async def test_cli_trains_an_arm_router_that_a_yaml_policy_runs(
    tmp_path: Path, cli_runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`system2 router train --arms` trains one column per arm and records the arms; the
    same YAML's compute_aware policy then answers through the orchestrator with the chosen
    arm's model and strategy (scripted workers, a constant embedder)."""
    from system2.cli.main import app
    from workers.embedder import SentenceEmbedder

    labels = tmp_path / "labels.jsonl"
    await collect_labels(
        ITEMS, workers(), labels, samples=3, max_tokens=64, greedy=True, progress=False
    )
    arms = [arm("slow-sc3", "slow", 3), arm("steady-greedy", "steady")]
    config = {
        "models": {
            "slow": {"kind": "scripted", "responses": ["The answer is 99."]},
            "steady": {"kind": "scripted", "responses": ["The answer is 4."]},
        },
        "policy": {
            "kind": "compute_aware",
            "router": str(tmp_path / "router"),
            "rule": "threshold",
            "threshold": 0.0,
            "cost": "tokens",
            "arms": [a.model_dump(mode="json") for a in arms],
        },
    }
    path = tmp_path / "pool.yaml"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setattr(
        SentenceEmbedder, "load", staticmethod(lambda name="constant": ConstantEmbedder())
    )
    result = cli_runner.invoke(
        app,
        ["router", "train", str(labels), "--arms", str(path), "--out", str(tmp_path / "router"),
         "--epochs", "3"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "router" / "router.json").read_text())
    assert meta["models"] == ["slow-sc3", "steady-greedy"]
    assert sorted(meta["training"]["arms"]) == ["slow-sc3", "steady-greedy"]
    assert meta["completion_tokens"]["steady-greedy"] < meta["completion_tokens"]["slow-sc3"]

    orchestrator = build_orchestrator(load_config(path))
    answer = await orchestrator.answer(Query(text="What is 2 + 2?"))
    # threshold 0: the cheapest arm (in tokens) clears it, the steady model's greedy arm.
    assert answer.trace.plan["models"] == ["steady"]
    assert answer.trace.plan["strategy"]["kind"] == "greedy"
    assert answer.answer == "4"

    result = cli_runner.invoke(
        app, ["router", "train", str(labels), "--arms", str(tmp_path / "none.yaml"),
              "--out", str(tmp_path / "r2")],
    )  # fmt: skip
    assert result.exit_code == 2
