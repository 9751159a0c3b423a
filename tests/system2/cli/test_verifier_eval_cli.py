"""``system2 verifier`` with two triplet sources and two verifier kinds on a tiny byte
model: ``synthesize --source paths``, ``train --source`` (recorded, and checked), and one
``eval`` over an LLM2 verifier and a trunk head: the unguided modes load no verifier and
run once, the guided ones per verifier, ``--kind`` choosing among them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import system2.evaluation
from system2.cli.main import app
from system2.pipelines.verifier_triplets import from_paths_runs, read_triplets
from tests.system2.cli.toy_items import toy_items
from tests.workers.verifier.byte_model import ByteTokenizer, byte_model
from workers.transformers_worker import TransformersWorker
from workers.verifier import load_verifier


class _Loads:
    """``TransformersWorker.load`` on the byte model, logging the verifier each load gets."""

    def __init__(self) -> None:
        self.verifiers: list[str | None] = []

    def __call__(
        self,
        cls: type[TransformersWorker],
        model: str,
        *,
        model_name: str | None = None,
        verifier: str | None = None,
        verify_base: bool = True,
        **kwargs: Any,
    ) -> TransformersWorker:
        self.verifiers.append(None if verifier is None else Path(verifier).name)
        kwargs = {k: v for k, v in kwargs.items() if k == "max_batch_rows"}
        lm = byte_model()
        attached = load_verifier(verifier, lm, verify_base=verify_base) if verifier else None
        return cls(lm, ByteTokenizer(), model_name=model_name or model, verifier=attached, **kwargs)


def _sampled_run(path: Path) -> None:
    """An SC run file: per question one right and one wrong sampled path."""
    header = {"type": "header", "dataset": "toy", "limit": 2, "seed": 0, "model": "tiny"}
    records = [
        {
            "type": "item",
            "id": item.id,
            "question": item.query.text,
            "status": "ok",
            "completion_tokens": 20,
            "seconds": 1.0,
            "trace": {
                "candidates": [
                    {
                        "text": f"So {i} + 4 = {i + 4}.",
                        "answer": str(i + 4),
                        "finish_reason": "stop",
                    },
                    {
                        "text": f"So {i} + 5 = {i + 5}.",
                        "answer": str(i + 5),
                        "finish_reason": "stop",
                    },
                ]
            },
        }
        for i, item in enumerate(toy_items("toy", limit=2, seed=0))
    ]
    path.write_text("".join(json.dumps(x) + "\n" for x in [header, *records]))


def _invoke(cli_runner: CliRunner, *args: str) -> str:
    result = cli_runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_two_sources_two_kinds_one_table(
    cli_runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rollout triplets train an LLM2 verifier, path triplets a trunk head (sources
    recorded); one eval runs greedy and SC once and each verifier's guided modes under
    its label, and a rerun with ``--kind trunk_head`` loads and resumes only the head's."""
    loads = _Loads()
    monkeypatch.setattr(TransformersWorker, "load", classmethod(loads))
    monkeypatch.setattr(system2.evaluation, "load_dataset", toy_items)
    monkeypatch.setattr(from_paths_runs, "load_dataset", toy_items)
    monkeypatch.setattr(from_paths_runs, "resolve", lambda name: name)
    monkeypatch.setattr("transformers.AutoTokenizer.from_pretrained", lambda name: ByteTokenizer())
    rollouts, paths = tmp_path / "rollouts.jsonl", tmp_path / "paths.jsonl"
    llm2, trunk = tmp_path / "llm2_dir", tmp_path / "trunk_dir"

    _invoke(
        cli_runner, "verifier", "synthesize", "toy", "--model", "tiny", "--out", str(rollouts),
        "--limit", "4", "--gold-rationale", "--reference-samples", "0", "--max-tokens", "3",
        "--positions", "16", "--alternatives", "2", "--alpha", "0.01", "--rollouts", "2",
        "--threshold", "1.0",
    )  # fmt: skip
    assert read_triplets(rollouts)[0]["source"] == "rollouts"  # type: ignore[index]
    run = tmp_path / "sc_run.jsonl"
    _sampled_run(run)
    _invoke(
        cli_runner, "verifier", "synthesize", "--source", "paths", "--runs", str(run),
        "--out", str(paths),
    )  # fmt: skip
    header, records = read_triplets(paths)
    assert header is not None
    assert (header["source"], header["runs"]) == ("paths", [str(run)])
    assert sum(len(r["triplets"]) for r in records.values()) == 2

    _invoke(
        cli_runner, "verifier", "train", str(rollouts), "--out", str(llm2), "--source",
        "rollouts", "--mode", "head", "--epochs", "1", "--batch", "2", "--val-fraction", "0.25",
    )  # fmt: skip
    _invoke(
        cli_runner, "verifier", "train", str(paths), "--out", str(trunk), "--kind",
        "trunk_head", "--source", "paths", "--rank", "2", "--epochs", "1", "--batch", "1",
        "--val-fraction", "0.5",
    )  # fmt: skip
    recorded = json.loads((trunk / "metrics.json").read_text())["triplets"]
    assert (recorded["source"], recorded["file"], recorded["triplets"]) == ("paths", str(paths), 2)
    assert recorded["rollouts"] == 0

    loads.verifiers.clear()
    out = tmp_path / "eval"
    evaluate = [
        "verifier", "eval", "toy", "--model", "tiny", "--verifier", str(llm2),
        "--verifier", str(trunk), "--out-dir", str(out), "--limit", "2",
        "--modes", "greedy,guided_greedy,sc", "--k", "2", "--temperature", "1.0",
        "--max-tokens", "3",
    ]  # fmt: skip
    output = _invoke(cli_runner, *evaluate)
    assert loads.verifiers == [None, "llm2_dir", "trunk_dir"]  # one model in memory at a time
    summary = json.loads((out / "summary.json").read_text())
    assert [row["mode"] for row in summary] == [
        "greedy", "guided_greedy@llm2", "guided_greedy@trunk_head", "sc",
        "sc+verifier_vote@llm2", "sc+verifier_vote@trunk_head",
    ]  # fmt: skip
    rows = {row["mode"]: row for row in summary}
    assert rows["guided_greedy@llm2"]["verifier"]["source"] == "rollouts"
    assert rows["guided_greedy@trunk_head"]["verifier"]["kind"] == "trunk_head"
    assert rows["guided_greedy@trunk_head"]["verifier"]["source"] == "paths"
    assert rows["guided_greedy@trunk_head"]["paired"]["baseline"] == "greedy"
    assert rows["sc+verifier_vote@trunk_head"]["paired"]["n"] == 2
    assert "trunk_head, paths" in output
    assert (out / "guided_greedy@trunk_head.jsonl").exists()
    assert (out / "sc_verifier_vote@llm2.jsonl").exists()

    loads.verifiers.clear()
    before = (out / "guided_greedy@trunk_head.jsonl").read_text()
    _invoke(cli_runner, *evaluate, "--kind", "trunk_head", "--modes", "guided_greedy")
    assert loads.verifiers == ["trunk_dir"]
    assert (out / "guided_greedy@trunk_head.jsonl").read_text() == before  # resumed
    after = {row["mode"]: row for row in json.loads((out / "summary.json").read_text())}
    assert list(after) == list(rows)  # merged into, not overwritten
    resumed = after["guided_greedy@trunk_head"]  # no item ran: the first call's timings
    assert resumed["wall_seconds"] == rows["guided_greedy@trunk_head"]["wall_seconds"]
    assert resumed["paired"]["baseline"] == "greedy"  # greedy read back from its file


def test_train_refuses_triplets_of_another_source(cli_runner: CliRunner, tmp_path: Path) -> None:
    """``train --source`` names the file's source and the one asked for, before loading."""
    paths = tmp_path / "paths.jsonl"
    paths.write_text(json.dumps({"type": "header", "kind": "verifier_triplets", "source": "paths"}))
    result = cli_runner.invoke(
        app, ["verifier", "train", str(paths), "--out", "x", "--source", "rollouts"]
    )
    assert result.exit_code == 2
    assert "holds triplets from paths, not from rollouts" in result.output
    result = cli_runner.invoke(
        app, ["verifier", "train", str(paths), "--out", "x", "--source", "path"]
    )
    assert result.exit_code == 2
    assert "unknown --source 'path': rollouts, paths" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["synthesize", "--source", "model", "--out", "t.jsonl"], "unknown --source 'model'"),
        (["synthesize", "--runs", "r.jsonl", "--out", "t.jsonl"], "--runs is for --source paths"),
        (["synthesize", "--source", "paths", "--out", "t.jsonl"], "path triplets need run files"),
        (["eval", "--out-dir", "o", "--modes", "guided_greedy"], "guided modes need a --verifier"),
    ],
)
def test_source_and_verifier_mistakes_are_named(
    cli_runner: CliRunner, args: list[str], message: str
) -> None:
    """Each mistake fails before any model loads, saying what was wrong."""
    result = cli_runner.invoke(app, ["verifier", *args])
    assert result.exit_code == 2
    assert message in result.output
