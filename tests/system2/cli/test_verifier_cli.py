"""``system2 verifier``: help texts, and synthesize -> train -> eval on a tiny byte model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import system2.evaluation
from system2.cli.main import app
from system2.pipelines.verifier_triplets import read_triplets
from tests.system2.cli.toy_items import toy_items
from tests.workers.verifier.byte_model import ByteTokenizer, byte_model
from workers.transformers_worker import TransformersWorker
from workers.verifier import TokenVerifier


@pytest.mark.parametrize("command", [[], ["synthesize"], ["train"], ["eval"]])
def test_help(cli_runner: CliRunner, command: list[str]) -> None:
    result = cli_runner.invoke(app, ["verifier", *command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def _fake_load(
    cls: type[TransformersWorker],
    model: str,
    *,
    model_name: str | None = None,
    verifier: str | None = None,
    verify_base: bool = True,
    **kwargs: Any,
) -> TransformersWorker:
    """Every model name loads the same tiny byte model (same weights each time)."""
    kwargs = {k: v for k, v in kwargs.items() if k == "max_batch_rows"}
    lm = byte_model()
    attached = TokenVerifier.load(verifier, lm, verify_base=verify_base) if verifier else None
    return cls(lm, ByteTokenizer(), model_name=model_name or model, verifier=attached, **kwargs)


def test_synthesize_train_eval_end_to_end(
    cli_runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(TransformersWorker, "load", classmethod(_fake_load))
    monkeypatch.setattr(system2.evaluation, "load_dataset", toy_items)
    triplets, verifier = tmp_path / "triplets.jsonl", tmp_path / "verifier"
    synthesize = [
        "verifier", "synthesize", "toy", "--model", "tiny", "--out", str(triplets),
        "--limit", "4", "--gold-rationale", "--reference-samples", "0", "--max-tokens", "3",
        "--positions", "16", "--alternatives", "2", "--alpha", "0.01", "--rollouts", "2",
        "--threshold", "1.0",
    ]  # fmt: skip
    result = cli_runner.invoke(app, synthesize)
    assert result.exit_code == 0, result.output
    header, records = read_triplets(triplets)
    assert header is not None
    assert header["generator"] == "tiny"
    assert all(r["references"][0]["source"] == "gold" for r in records.values())
    assert sum(len(r["triplets"]) for r in records.values()) > 0
    # A larger --limit extends the same file: the four items stay, one more is explored.
    more = [
        *synthesize[: synthesize.index("--limit") + 1],
        "5",
        *synthesize[synthesize.index("--limit") + 2 :],
    ]
    result = cli_runner.invoke(app, more)
    assert result.exit_code == 0, result.output
    assert read_triplets(triplets)[1].keys() == records.keys() | {
        toy_items("toy", limit=5, seed=0)[-1].id
    }

    train = [
        "verifier", "train", str(triplets), "--out", str(verifier), "--mode", "head",
        "--epochs", "2", "--batch", "2", "--val-fraction", "0.25", "--head-lr", "0.01",
    ]  # fmt: skip
    result = cli_runner.invoke(app, train)
    assert result.exit_code == 0, result.output
    metrics = json.loads((verifier / "metrics.json").read_text())
    assert [e["epoch"] for e in metrics["epochs"]] == [0, 1, 2]
    assert metrics["settings"]["mode"] == "head"
    assert metrics["train_triplets"] > 0
    assert (verifier / "verifier.safetensors").exists()

    evaluate = [
        "verifier", "eval", "toy", "--model", "tiny", "--verifier", str(verifier),
        "--out-dir", str(tmp_path / "eval"), "--limit", "2", "--modes", "greedy,guided_greedy",
        "--max-tokens", "4",
    ]  # fmt: skip
    result = cli_runner.invoke(app, evaluate)
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert [row["mode"] for row in summary] == ["greedy", "guided_greedy@llm2"]
    assert summary[1]["verifier_seconds"] > 0.0
    assert summary[0]["verifier_seconds"] is None  # greedy runs without the verifier
    assert 0.0 < summary[1]["verifier_share"] <= 1.0
    assert summary[1]["verifier_share"] == min(
        1.0, summary[1]["verifier_seconds"] / summary[1]["wall_seconds"]
    )
    assert "guided_greedy" in result.output

    sc = [*evaluate[:11], "--modes", "sc", "--k", "3", "--temperature", "1.0", "--max-tokens", "4"]
    result = cli_runner.invoke(app, sc)
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert [row["mode"] for row in summary] == [  # the earlier call's rows are kept
        "greedy", "guided_greedy@llm2", "sc", "sc+verifier_vote@llm2",
    ]  # fmt: skip
    sc_row, revote = summary[2], summary[3]
    assert revote["items"] == sc_row["items"] == 2
    assert revote["completion_tokens_mean"] == sc_row["completion_tokens_mean"]
    assert revote["verifier_seconds"] > 0.0
    revoted = [json.loads(line) for line in Path(revote["file"]).read_text().splitlines()]
    assert revoted[0]["revote"]["aggregate"] == "min"
    for record in revoted[1:]:
        candidates = record["trace"]["candidates"]
        assert len(record["verifier_vote"]["step_scores"]) == len(candidates) == 3


def test_eval_refuses_unknown_modes(cli_runner: CliRunner, tmp_path: Path) -> None:
    result = cli_runner.invoke(
        app,
        ["verifier", "eval", "--verifier", str(tmp_path), "--out-dir", str(tmp_path),
         "--modes", "greedy,best"],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "unknown mode 'best'" in result.output
