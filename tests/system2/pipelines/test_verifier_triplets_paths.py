"""Path triplets: where a right and a wrong sampled path part, (prefix, good, bad); from run
files to a triplets file that the trainer reads, and a trunk head trained on it (a tiny
byte model, so no real model is needed)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import system2.pipelines.verifier_triplets.from_paths_runs as from_paths_runs
from orchestrator.types import Query
from system2.cli.main import app
from system2.evaluation.datasets import EvalItem
from system2.pipelines.verifier_training import prepare_training
from system2.pipelines.verifier_triplets import read_triplets
from system2.pipelines.verifier_triplets.from_paths import (
    PathSettings,
    SampledPath,
    divergence_triplets,
)
from system2.pipelines.verifier_triplets.from_paths_runs import (
    RunFile,
    gather_paths,
    triplets_from_paths,
)
from tests.workers.verifier.byte_model import OFFSET, ByteTokenizer, byte_model
from workers.transformers_worker import TransformersWorker
from workers.verifier import TrainSettings, examples_from_records


def _right(*ids: int) -> SampledPath:
    return SampledPath(ids, correct=True)


def _wrong(*ids: int) -> SampledPath:
    return SampledPath(ids, correct=False)


def _found(paths: list[SampledPath], **settings: Any) -> list[tuple[int, int, int, int]]:
    return [
        (t.reference, t.position, t.gold_id, t.negative_id)
        for t in divergence_triplets(paths, PathSettings(**settings))
    ]


def test_a_right_and_a_wrong_path_give_one_triplet_where_they_part() -> None:
    """The triplet sits at the first differing token: the right path's is good."""
    assert _found([_wrong(1, 2, 5, 6), _right(1, 2, 3, 4)]) == [(1, 2, 3, 5)]


def test_paths_that_agree_on_rightness_give_none() -> None:
    """Two right paths, or two wrong ones, are no preference."""
    assert _found([_right(1, 2, 3), _right(1, 4, 3)]) == []
    assert _found([_wrong(1, 2, 3), _wrong(1, 4, 3)]) == []


def test_identical_paths_give_none_and_must_agree() -> None:
    """Copies of one path part nowhere; the same ids judged both ways are refused."""
    assert _found([_right(1, 2, 3), _right(1, 2, 3)]) == []
    with pytest.raises(ValueError, match="both right and wrong"):
        divergence_triplets([_right(1, 2, 3), _wrong(1, 2, 3)])


def test_a_path_that_is_a_prefix_of_another_gives_none() -> None:
    """Without a differing token there is no pair of tokens."""
    assert _found([_right(1, 2), _wrong(1, 2, 3)]) == []


def test_the_same_parting_is_kept_once() -> None:
    """Two right paths through the same branch give one (prefix, good, bad), on the first."""
    paths = [_wrong(1, 2, 5), _right(1, 2, 3, 7), _right(1, 2, 3, 8)]
    assert _found(paths) == [(1, 2, 3, 5)]


def test_branches_the_other_samples_contradict_are_dropped() -> None:
    """Branches 3 and 4 are each right half the time: no triplet there, only the later
    partings where each branch's paths split into right and wrong."""
    paths = [_right(1, 2, 3, 9), _wrong(1, 2, 4, 9), _right(1, 2, 4, 8), _wrong(1, 2, 3, 8)]
    found = divergence_triplets(paths)
    assert sorted((t.position, t.gold_id, t.negative_id) for t in found) == [(3, 8, 9), (3, 9, 8)]
    assert all(t.gold_accuracy == 1.0 and t.negative_accuracy == 0.0 for t in found)
    assert _found(paths, margin=1.0) == _found(paths)  # the two kept are 1.0 vs 0.0


def test_branch_accuracies_count_every_path_through_them() -> None:
    """Token 3's branch is right 2 of 3 times, token 5's 0 of 1: a gap of 2/3."""
    paths = [_right(1, 3, 1), _right(1, 3, 2), _wrong(1, 3, 4), _wrong(1, 5)]
    (top,) = [t for t in divergence_triplets(paths) if t.position == 1 and t.negative_id == 5]
    assert (top.reference, top.gold_id) == (0, 3)
    assert top.gold_accuracy == pytest.approx(2 / 3)
    assert (top.gold_paths, top.negative_paths) == (3, 1)
    assert _found(paths, margin=0.7) == [(0, 2, 1, 4), (1, 2, 2, 4)]


def test_the_cap_keeps_the_largest_gaps() -> None:
    """max_per_item keeps the triplets with the largest accuracy gaps (0 keeps all)."""
    paths = [_right(1, 3, 1), _right(1, 3, 2), _wrong(1, 3, 4), _wrong(1, 5), _wrong(1, 6)]
    everything = _found(paths, max_per_item=0)
    assert len(everything) == 4
    assert _found(paths, max_per_item=2) == [(0, 2, 1, 4), (1, 2, 2, 4)]


def test_settings_are_checked() -> None:
    """A margin outside (0, 1] or a negative cap is refused by name."""
    with pytest.raises(ValueError, match="margin"):
        PathSettings(margin=0.0)
    with pytest.raises(ValueError, match="max_per_item"):
        PathSettings(max_per_item=-1)


# --- run files -> triplets file ---------------------------------------------------------


def _item(i: int) -> EvalItem:
    return EvalItem(id=f"toy/{i}", query=Query(id=f"toy/{i}", text=f"What is {i} + 4?"), gold="12")


def _candidate(text: str, answer: str | None, finish: str = "stop") -> dict[str, Any]:
    return {
        "model": "tiny",
        "text": text,
        "answer": answer,
        "completion_tokens": len(text),
        "total_logprob": -1.0,
        "finish_reason": finish,
    }


def _record(item: EvalItem, candidates: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "type": "item",
        "id": item.id,
        "question": item.query.text,
        "status": "ok",
        "completion_tokens": 100,
        "seconds": 2.0,
        "trace": {"candidates": candidates},
        **extra,
    }


def _run(tmp_path: Path) -> tuple[RunFile, dict[str, EvalItem]]:
    items = {i.id: i for i in (_item(0), _item(1))}
    records = {
        "toy/0": _record(
            items["toy/0"],
            [
                _candidate("So 8 + 4 = 12.", "12"),
                _candidate("So 8 + 5 = 13.", "13"),
                _candidate("So 8 +", None, finish="length"),  # cut off: left out
            ],
        ),
        "toy/1": _record(items["toy/1"], [_candidate("It is 12.", "12")] * 2),
    }
    return RunFile(tmp_path / "run.jsonl", {"dataset": "toy"}, records), items


def test_run_records_become_a_triplets_file_the_trainer_reads(tmp_path: Path) -> None:
    """One triplet at the parting byte, on the right text as reference, with
    ``source: paths``; the trainer's reader puts it after the prompt's ids."""
    run, items = _run(tmp_path)
    questions = gather_paths([run], items)
    assert [q.correct for q in questions] == [[True, False], [True, True]]
    out = tmp_path / "paths.jsonl"
    stats = asyncio.run(
        triplets_from_paths(questions, ByteTokenizer(), out, generator="tiny", progress=False)
    )
    assert (stats.items, stats.triplets, stats.rollouts) == (2, 1, 0)
    header, records = read_triplets(out)
    assert header is not None
    assert (header["source"], header["generator"]) == ("paths", "tiny")
    first, second = records["toy/0"], records["toy/1"]
    assert (first["status"], second["status"]) == ("ok", "no_pair")
    (triplet,) = first["triplets"]
    assert triplet["source"] == "paths"
    assert (triplet["position"], triplet["gold_id"], triplet["negative_id"]) == (
        7,
        ord("4") + OFFSET,
        ord("5") + OFFSET,
    )
    assert first["references"][0]["text"] == "So 8 + 4 = 12."
    assert first["source_seconds"] == 2.0

    prompt_ids = [9, 9, 9]
    (example,) = examples_from_records(list(records.values()), lambda p: prompt_ids)
    (t,) = example.triplets
    assert (t.position, t.positive, t.negative) == (3 + 7, ord("4") + OFFSET, ord("5") + OFFSET)
    assert example.sequence[t.position] == ord("4") + OFFSET

    lines = out.read_text().count("\n")
    asyncio.run(
        triplets_from_paths(questions, ByteTokenizer(), out, generator="tiny", progress=False)
    )
    assert out.read_text().count("\n") == lines  # a rerun adds nothing


def test_recorded_verdicts_are_used_and_checked(tmp_path: Path) -> None:
    """``candidates_correct`` wins over scoring again; one of another length is refused."""
    item = _item(0)
    texts = [_candidate("So 12.", "12"), _candidate("So 13.", "13")]
    flipped = RunFile(
        tmp_path / "a.jsonl", {}, {item.id: _record(item, texts, candidates_correct=[False, True])}
    )
    assert gather_paths([flipped], {item.id: item})[0].correct == [False, True]
    broken = RunFile(
        tmp_path / "b.jsonl", {}, {item.id: _record(item, texts, candidates_correct=[True])}
    )
    with pytest.raises(ValueError, match="candidates_correct"):
        gather_paths([broken], {item.id: item})


def test_a_question_that_differs_from_the_data_set_is_refused(tmp_path: Path) -> None:
    """A run made on other items (another seed) is named, not silently mislabelled."""
    item = _item(0)
    record = _record(item, [_candidate("12", "12")], question="Another question?")
    with pytest.raises(ValueError, match=r"toy/0.*differs"):
        gather_paths([RunFile(tmp_path / "r.jsonl", {}, {item.id: record})], {item.id: item})


def test_a_trunk_head_trains_on_path_triplets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The path triplets file trains a trunk head for one epoch unchanged (tiny byte model)."""
    monkeypatch.setattr(
        TransformersWorker,
        "load",
        classmethod(lambda cls, *a, **k: cls(byte_model(), ByteTokenizer(), model_name="tiny")),
    )
    items = {i.id: i for i in (_item(0), _item(1))}
    records = {
        key: _record(
            item,
            [_candidate(f"So {k} + 4 = 12.", "12"), _candidate(f"So {k} + 5 = 13.", "13")],
        )
        for k, (key, item) in enumerate(items.items())
    }
    questions = gather_paths([RunFile(tmp_path / "run.jsonl", {}, records)], items)
    out = tmp_path / "paths.jsonl"
    asyncio.run(
        triplets_from_paths(questions, ByteTokenizer(), out, generator="tiny", progress=False)
    )
    _, written = read_triplets(out)
    settings = TrainSettings(epochs=1, batch_size=1, val_fraction=0.5)
    training = prepare_training(written.values(), "tiny", settings, kind="trunk_head", rank=2)
    metrics = training.run(tmp_path / "head")
    assert (metrics.train_triplets, metrics.val_triplets) == (1, 1)
    assert [e.epoch for e in metrics.epochs] == [0, 1]
    assert (tmp_path / "head" / "metrics.json").exists()


def test_the_cli_writes_path_triplets(
    cli_runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``verifier triplets-from-runs`` reads a run file, loads its generator's tokenizer and
    writes the triplets; a file that is no run file is refused with its name."""
    run, items = _run(tmp_path)
    path = tmp_path / "run.jsonl"
    header = {"type": "header", "dataset": "toy", "limit": 2, "seed": 0, "model": "tiny"}
    lines = [header, *run.records.values()]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    monkeypatch.setattr(from_paths_runs, "load_dataset", lambda *a, **k: list(items.values()))
    monkeypatch.setattr(from_paths_runs, "resolve", lambda name: name)
    monkeypatch.setattr("transformers.AutoTokenizer.from_pretrained", lambda name: ByteTokenizer())
    out = tmp_path / "paths.jsonl"
    args = ["verifier", "triplets-from-runs", str(path), "--out", str(out)]
    result = cli_runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    header_read, records = read_triplets(out)
    assert header_read is not None
    assert header_read["runs"] == [str(path)]
    assert len(records["toy/0"]["triplets"]) == 1

    bogus = tmp_path / "bogus.jsonl"
    bogus.write_text(json.dumps({"type": "header", "kind": "x"}) + "\n")
    result = cli_runner.invoke(
        app, ["verifier", "triplets-from-runs", str(bogus), "--out", str(out)]
    )
    assert result.exit_code != 0
    assert "not an evaluation run file" in result.output
