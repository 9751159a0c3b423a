"""Collecting SelectLLM labels with scripted workers: labels, resuming, headers, failures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.types import Query
from system2.evaluation import EvalItem, RunConfigMismatchError
from system2.pipelines.router_labels import collect_labels, read_labels
from workers.base import GenerateRequest
from workers.errors import WorkerFailure
from workers.scripted import ScriptedWorker

ITEMS = [
    EvalItem(
        id=f"q{i}", query=Query(id=f"q{i}", text=f"What is {i} + 2?", task="math"), gold=str(i + 2)
    )
    for i in range(3)
]


def question_of(request: GenerateRequest) -> str:
    prompt = request.prompt
    text = prompt if isinstance(prompt, str) else prompt[-1].content
    return next(item.query.text for item in ITEMS if item.query.text in text)


def always_right(request: GenerateRequest, index: int) -> str:
    """Every sample gives the gold answer."""
    i = int(question_of(request).split()[2])
    return f"{i} + 2 = {i + 2}. The answer is {i + 2}."


def wrong_on_q1(request: GenerateRequest, index: int) -> str:
    """Right on q0 and q2; on q1 two of three samples say 99 (majority wrong)."""
    i = int(question_of(request).split()[2])
    if i == 1 and index < 2:
        return "The answer is 99."
    return f"The answer is {i + 2}."


def make_workers() -> dict[str, ScriptedWorker]:
    return {
        "right": ScriptedWorker("right", always_right, seconds_per_call=0.5),
        "mixed": ScriptedWorker("mixed", wrong_on_q1),
    }


def calls(worker: ScriptedWorker) -> int:
    return len(worker.requests)


async def test_collect_writes_a_label_per_item_and_model(tmp_path: Path) -> None:
    """Each (item, model) gets one record: majority answer, its margin, and label 1 iff right."""
    out = tmp_path / "labels.jsonl"
    stats = await collect_labels(ITEMS, make_workers(), out, samples=3, progress=False)
    header, records = read_labels(out)
    assert header is not None
    assert header["models"] == ["right", "mixed"]
    assert header["strategy"]["n"] == 3
    assert len(records) == 6
    assert {(i, m): r["label"] for (i, m), r in records.items()} == {
        ("q0", "right"): 1, ("q1", "right"): 1, ("q2", "right"): 1,
        ("q0", "mixed"): 1, ("q1", "mixed"): 0, ("q2", "mixed"): 1,
    }  # fmt: skip
    wrong = records[("q1", "mixed")]
    assert wrong["answer"] == "99"
    assert wrong["votes"] == {"99": 2.0, "3": 1.0}
    assert wrong["margin"] == pytest.approx(1 / 3)
    assert wrong["question"] == "What is 1 + 2?"
    assert records[("q0", "right")]["completion_tokens"] == 3 * 9  # "0 + 2 = 2. The ..."
    assert records[("q0", "right")]["seconds"] == 0.5
    assert stats["right"].mean_seconds == 0.5
    assert stats["mixed"].positives == 2
    assert stats["right"].positives == 3


async def test_collect_resumes_without_redoing_pairs(tmp_path: Path) -> None:
    """A rerun on a larger item list only labels the pairs not yet recorded."""
    out = tmp_path / "labels.jsonl"
    await collect_labels(ITEMS[:2], make_workers(), out, samples=3, progress=False)
    workers = make_workers()
    stats = await collect_labels(ITEMS, workers, out, samples=3, progress=False)
    assert calls(workers["right"]) == 1
    assert calls(workers["mixed"]) == 1
    assert sum(s.pairs for s in stats.values()) == 6
    header_lines = [line for line in out.read_text().splitlines() if '"header"' in line]
    assert len(header_lines) == 1


async def test_collect_ignores_a_torn_final_line(tmp_path: Path) -> None:
    """A record cut off mid-write by a crash is dropped and its pair labelled again."""
    out = tmp_path / "labels.jsonl"
    await collect_labels(ITEMS, make_workers(), out, samples=3, progress=False)
    data = out.read_bytes()
    out.write_bytes(data[: data.rstrip(b"\n").rfind(b"\n") + 20])
    workers = make_workers()
    await collect_labels(ITEMS, workers, out, samples=3, progress=False)
    assert calls(workers["right"]) + calls(workers["mixed"]) == 1
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 7


async def test_collect_refuses_a_mismatched_header(tmp_path: Path) -> None:
    """A labels file written with other settings is refused, naming the differing keys."""
    out = tmp_path / "labels.jsonl"
    await collect_labels(ITEMS, make_workers(), out, samples=3, progress=False)
    with pytest.raises(RunConfigMismatchError, match="strategy"):
        await collect_labels(ITEMS, make_workers(), out, samples=5, progress=False)
    with pytest.raises(RunConfigMismatchError, match="models"):
        await collect_labels(ITEMS, {"right": make_workers()["right"]}, out, progress=False)


async def test_failed_model_calls_are_recorded_and_retried_on_request(tmp_path: Path) -> None:
    """A failing model call is recorded as failed (no label), kept on a plain rerun and
    labelled again with retry_failed."""

    def broken(request: GenerateRequest, index: int) -> str:
        raise WorkerFailure("flaky", "out of memory")

    def crashing(request: GenerateRequest, index: int) -> str:
        raise RuntimeError("backend crashed")

    out = tmp_path / "labels.jsonl"
    workers = {"flaky": ScriptedWorker("flaky", broken), "crash": ScriptedWorker("crash", crashing)}
    stats = await collect_labels(ITEMS[:1], workers, out, samples=2, progress=False)
    _, records = read_labels(out)
    assert records[("q0", "flaky")]["status"] == "failed"
    assert records[("q0", "flaky")]["label"] is None
    assert "out of memory" in records[("q0", "flaky")]["detail"]
    assert "backend crashed" in records[("q0", "crash")]["detail"]
    assert stats["flaky"].failed == 1

    fixed = {
        "flaky": ScriptedWorker("flaky", always_right),
        "crash": ScriptedWorker("crash", always_right),
    }
    await collect_labels(ITEMS[:1], fixed, out, samples=2, progress=False)
    assert calls(fixed["flaky"]) == 0
    await collect_labels(ITEMS[:1], fixed, out, samples=2, retry_failed=True, progress=False)
    _, records = read_labels(out)
    assert records[("q0", "flaky")]["label"] == 1
    assert records[("q0", "crash")]["label"] == 1


async def test_concurrent_collection_labels_every_pair(tmp_path: Path) -> None:
    """With several pairs in flight every pair is still labelled exactly once."""
    out = tmp_path / "labels.jsonl"
    await collect_labels(ITEMS, make_workers(), out, samples=3, concurrency=4, progress=False)
    lines = out.read_text().splitlines()
    assert len(lines) == 7
    _, records = read_labels(out)
    assert sorted(records) == sorted((i.id, m) for i in ITEMS for m in ("right", "mixed"))


async def test_one_model_at_a_time_fills_one_file_for_the_pool(tmp_path: Path) -> None:
    """With ``pool`` each model is collected on its own into the same file (the header lists
    the pool), the stats cover every model collected so far, and a stranger is refused."""
    out = tmp_path / "labels.jsonl"
    workers = make_workers()
    pool = ["right", "mixed"]
    first = await collect_labels(
        ITEMS, {"right": workers["right"]}, out, pool=pool, samples=3, progress=False
    )
    assert (first["right"].pairs, first["mixed"].pairs) == (3, 0)
    assert calls(workers["mixed"]) == 0
    both = await collect_labels(
        ITEMS, {"mixed": workers["mixed"]}, out, pool=pool, samples=3, progress=False
    )
    assert (both["right"].positives, both["mixed"].positives) == (3, 2)
    header, records = read_labels(out)
    assert header is not None
    assert header["models"] == pool
    assert sorted(records) == sorted((i.id, m) for i in ITEMS for m in pool)
    with pytest.raises(ValueError, match="not in the pool"):
        await collect_labels(ITEMS, {"other": workers["right"]}, out, pool=pool, progress=False)


SCRIPTED_CONFIG = """\
models:
  fours: {kind: scripted, responses: ["2 + 2 = 4. The answer is 4."]}
  fives: {kind: scripted, responses: ["The answer is 5."]}
policy: {kind: all, models: [fours, fives]}
"""


def test_cli_collect_labels_a_mixed_set_and_resumes(tmp_path: Path, cli_runner: CliRunner) -> None:
    """`system2 router collect` labels every model of the config on several data sets,
    a rerun does nothing new, and other settings on the same file exit 2."""
    from system2.cli.main import app

    config = tmp_path / "scripted.yaml"
    config.write_text(SCRIPTED_CONFIG)
    out = tmp_path / "labels.jsonl"
    args = ["router", "collect", "basic_arithmetic", "chain_sum", "--config", str(config)]
    args += ["--limit", "2", "--samples", "2", "--out", str(out)]
    first = cli_runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    header, records = read_labels(out)
    assert header is not None
    assert header["datasets"] == ["basic_arithmetic", "chain_sum"]
    assert header["models"] == ["fours", "fives"]
    assert len(records) == 2 * 2 * 2
    assert "fours" in first.output
    again = cli_runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert len(out.read_text().splitlines()) == 1 + 8

    other = cli_runner.invoke(app, [*args[:-4], "--samples", "3", "--out", str(out)])
    assert other.exit_code == 2
    assert "different run_config" in other.output


def test_cli_collect_unknown_dataset_exits_2(tmp_path: Path, cli_runner: CliRunner) -> None:
    """An unknown data set name is an error message and exit code 2, not a traceback."""
    from system2.cli.main import app

    config = tmp_path / "scripted.yaml"
    config.write_text(SCRIPTED_CONFIG)
    args = ["router", "collect", "gsm_symbolc", "--config", str(config), "--out", "x.jsonl"]
    result = cli_runner.invoke(app, args)
    assert result.exit_code == 2
    assert "unknown data set" in result.output
