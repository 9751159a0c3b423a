"""``system2 verifier train --kind trunk_head`` and its head through ``eval``: guided greedy,
SC on guided samples and the verifier vote, on a tiny byte model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import system2.evaluation
from system2.cli.main import app
from tests.system2.cli.toy_items import toy_items
from tests.workers.verifier.byte_model import ByteTokenizer, byte_model
from workers.transformers_worker import TransformersWorker
from workers.verifier import TrunkHead, load_verifier, saved_verifier_kind


def _fake_load(
    cls: type[TransformersWorker],
    model: str,
    *,
    model_name: str | None = None,
    verifier: str | None = None,
    verify_base: bool = True,
    **kwargs: Any,
) -> TransformersWorker:
    """Every model name loads the same tiny byte model; a verifier of either kind attaches."""
    kwargs = {k: v for k, v in kwargs.items() if k == "max_batch_rows"}
    lm = byte_model()
    attached = load_verifier(verifier, lm, verify_base=verify_base) if verifier else None
    return cls(lm, ByteTokenizer(), model_name=model_name or model, verifier=attached, **kwargs)


def test_train_a_trunk_head_and_evaluate_it(
    cli_runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Trains U and V on the frozen model (fingerprinted), then guides, samples guided and
    votes with the head's step scores through the same eval as the LLM2 verifier."""
    monkeypatch.setattr(TransformersWorker, "load", classmethod(_fake_load))
    monkeypatch.setattr(system2.evaluation, "load_dataset", toy_items)
    triplets, verifier = tmp_path / "triplets.jsonl", tmp_path / "trunk"
    synthesize = [
        "verifier", "synthesize", "toy", "--model", "tiny", "--out", str(triplets),
        "--limit", "4", "--gold-rationale", "--reference-samples", "0", "--max-tokens", "3",
        "--positions", "16", "--alternatives", "2", "--alpha", "0.01", "--rollouts", "2",
        "--threshold", "1.0",
    ]  # fmt: skip
    result = cli_runner.invoke(app, synthesize)
    assert result.exit_code == 0, result.output

    train = [
        "verifier", "train", str(triplets), "--out", str(verifier), "--kind", "trunk_head",
        "--rank", "4", "--batch", "2", "--val-fraction", "0.25", "--head-lr", "0.05",
    ]  # fmt: skip
    result = cli_runner.invoke(app, train)
    assert result.exit_code == 0, result.output
    metrics = json.loads((verifier / "metrics.json").read_text())
    assert metrics["kind"] == "trunk_head"
    assert metrics["rank"] == 4
    assert [e["epoch"] for e in metrics["epochs"]] == list(range(21))  # default: 20
    assert metrics["train_triplets"] > 0
    assert saved_verifier_kind(verifier) == "trunk_head"
    head = TrunkHead.load(verifier, byte_model())  # the fingerprint matches the base
    assert not head.is_untrained()

    evaluate = [
        "verifier", "eval", "toy", "--model", "tiny", "--verifier", str(verifier),
        "--out-dir", str(tmp_path / "eval"), "--limit", "2",
        "--modes", "greedy,guided_greedy,guided_sc", "--k", "3", "--temperature", "1.0",
        "--max-tokens", "4",
    ]  # fmt: skip
    result = cli_runner.invoke(app, evaluate)
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    modes = [row["mode"] for row in summary]
    assert modes == [
        "greedy", "guided_greedy@trunk_head", "guided_sc@trunk_head",
        "guided_sc+verifier_vote@trunk_head",
    ]  # fmt: skip
    by_mode = {row["mode"]: row for row in summary}
    assert by_mode["greedy"]["verifier_seconds"] is None  # run without the head
    assert by_mode["guided_greedy@trunk_head"]["verifier_seconds"] > 0.0
    assert by_mode["guided_sc+verifier_vote@trunk_head"]["items"] == 2
    revoted = Path(by_mode["guided_sc+verifier_vote@trunk_head"]["file"]).read_text().splitlines()
    for record in map(json.loads, revoted[1:]):
        assert len(record["verifier_vote"]["step_scores"]) == 3


def test_train_refuses_an_unknown_kind(cli_runner: CliRunner, tmp_path: Path) -> None:
    """A typo in --kind is named before anything loads."""
    (tmp_path / "t.jsonl").write_text("")
    result = cli_runner.invoke(
        app, ["verifier", "train", str(tmp_path / "t.jsonl"), "--out", "x", "--kind", "trunk"]
    )
    assert result.exit_code != 0
    assert "unknown kind 'trunk'" in result.output
