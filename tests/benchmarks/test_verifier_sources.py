"""The verifier-sources benchmark on tiny synthetic triplet files: costs as recorded (or
said to be missing), one shared validation split, a head per source, per-hour figures.

The files are written by the test; heads train on the tiny random byte-level Qwen2.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks.common import report
from benchmarks.verifier_sources import (
    SourceCost,
    comparisons,
    cost_notes,
    downstream_fields,
    read_source,
    shared_split,
    source_row,
    train_heads,
)
from system2.evaluation.stats import wilson_interval
from tests.workers.verifier.byte_model import ByteTokenizer, byte_model
from workers.chat_prompt import encode_prompt
from workers.verifier import TrainSettings, examples_from_records

TOKENIZER = ByteTokenizer()
PROMPT = "Q: 1+1?\nA:"
REFERENCE = " two. The answer is 2."


def _token(char: str) -> int:
    (token,) = TOKENIZER.encode(char)
    return token


def _record(item: str, good: str, bad: str, **cost: Any) -> dict[str, Any]:
    """An ``ok`` item record in the triplets-file format: one reference, two triplets
    preferring ``good`` over ``bad`` at reference positions 3 and 8."""
    triplets = [
        {
            "reference": 0,
            "position": p,
            "gold_id": _token(good),
            "negative_id": _token(bad),
            "gold_accuracy": 1.0,
            "negative_accuracy": 0.0,
        }
        for p in (3, 8)
    ]
    reference = {"text": REFERENCE, "token_ids": TOKENIZER.encode(REFERENCE), "positions": []}
    return {"type": "item", "id": item, "status": "ok", "prompt": PROMPT,
            "references": [reference], "triplets": triplets, **cost}  # fmt: skip


def _write(path: Path, header: dict[str, Any], records: list[dict[str, Any]]) -> Path:
    lines = [{"type": "header", "kind": "verifier_triplets", **header}, *records]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def _files(tmp_path: Path, *, path_seconds: bool = True) -> dict[str, Path]:
    """Rollouts prefer "a" over "b" (items r0..r5, 100 s and 50 tokens each); paths prefer
    "b" over "a" (items p0..p5, 0.01 s own, 300 s reused each unless ``path_seconds`` is
    off)."""
    rollouts = [
        _record(f"r{i}", "a", "b", rollouts=8, completion_tokens=50, seconds=100.0)
        for i in range(6)
    ]
    reused = {"source_seconds": 300.0} if path_seconds else {}
    paths = [
        _record(
            f"p{i}",
            "b",
            "a",
            completion_tokens=0,
            seconds=0.01,
            source_completion_tokens=400,
            **reused,
        )
        for i in range(6)
    ]
    return {
        "rollouts": _write(tmp_path / "r.jsonl", {"generator": "tiny"}, rollouts),
        "paths": _write(tmp_path / "p.jsonl", {"generator": "tiny", "source": "paths"}, paths),
    }


def test_costs_are_what_the_files_record(tmp_path: Path) -> None:
    """Rollouts: own seconds, nothing reused; paths: extraction seconds plus the reused
    generation; a path file without ``source_seconds`` has no generation hours, and the
    output says so."""
    files = _files(tmp_path)
    generator, records, rollouts = read_source(files["rollouts"])
    assert (generator, len(records)) == ("tiny", 6)
    assert rollouts == SourceCost(12, 6, 300, 600.0, 0, 0.0)
    assert rollouts.generation_hours == pytest.approx(600 / 3600)
    _, _, paths = read_source(files["paths"])
    assert (paths.own_seconds, paths.reused_seconds) == (pytest.approx(0.06), 1800.0)
    assert paths.generation_hours == pytest.approx(1800.06 / 3600)
    assert cost_notes({"rollouts": rollouts, "paths": paths}) == []

    (tmp_path / "bare").mkdir()
    _, _, unrecorded = read_source(_files(tmp_path / "bare", path_seconds=False)["paths"])
    assert unrecorded.reused_seconds is None
    assert unrecorded.generation_hours is None
    (note,) = cost_notes({"paths": unrecorded})
    assert "source_seconds" in note
    assert "not recorded" in note
    row = source_row("paths", unrecorded, 4, {"k1": True, "k2": False})
    assert row["generation_hours"] is None
    assert row["val_gain_per_hour"] is None


def test_bad_files_are_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no such triplet file"):
        read_source(tmp_path / "missing.jsonl")
    bare = _write(tmp_path / "bare.jsonl", {}, [_record("r0", "a", "b", seconds=1.0)])
    with pytest.raises(ValueError, match=r"bare\.jsonl: the header records no generator"):
        read_source(bare)


def _examples(files: dict[str, Path]) -> dict[str, Any]:
    def encode(prompt: Any) -> tuple[int, ...]:
        return encode_prompt(TOKENIZER, prompt)

    return {s: examples_from_records(read_source(p)[1], encode) for s, p in files.items()}


def test_one_split_holds_out_the_same_items_for_both_sources(tmp_path: Path) -> None:
    """The items of both files are split once: validation has pairs from held-out items of
    either source, and neither source trains on a held-out item."""
    examples = _examples(_files(tmp_path))
    train, val = shared_split(examples, 0.5, 0)
    held = {e.item for _, e in val}
    assert len(held) == 6
    assert {s for s, _ in val} == {"rollouts", "paths"}
    for source, kept in train.items():
        assert kept
        assert not {e.item for e in kept} & held
        assert {e.item for e in kept} | {e.item for s, e in val if s == source} == {
            e.item for e in examples[source]
        }
    with pytest.raises(ValueError, match="no item is held out"):
        shared_split(examples, 0.0, 0)
    with pytest.raises(ValueError, match="source 'paths' has no triplets left"):
        shared_split({"rollouts": examples["rollouts"], "paths": examples["paths"][:1]}, 0.9, 0)


def test_each_head_learns_its_own_source(tmp_path: Path) -> None:
    """Rollouts teach "a over b", paths "b over a", on the same states: on the shared
    validation pairs each head gets its own source's pairs right and the other's wrong,
    so the table and the paired test show two heads that disagree on every pair."""
    examples = _examples(_files(tmp_path))
    settings = TrainSettings(epochs=30, batch_size=4, head_lr=5e-2, warmup_fraction=0.0)
    _, outcomes, counts = train_heads(byte_model(), examples, settings, rank=4, val_fraction=0.5)
    assert set(outcomes["rollouts"]) == set(outcomes["paths"])  # the same pairs
    for source, right in outcomes.items():
        assert right
        assert all(ok == key.startswith(source) for key, ok in right.items())
    assert counts == {"rollouts": 6, "paths": 6}  # 3 training items each, 2 triplets per item

    _, _, cost = read_source(_files(tmp_path)["rollouts"])
    row = source_row("rollouts", cost, counts["rollouts"], outcomes["rollouts"])
    n, k = len(outcomes["rollouts"]), sum(outcomes["rollouts"].values())
    assert row["val_accuracy"] == k / n
    assert row["val_accuracy_ci"] == pytest.approx(wilson_interval(k, n))
    assert row["val_gain_per_hour"] == pytest.approx((k / n - 0.5) / (600 / 3600))
    (pair,) = comparisons(outcomes, {})
    assert (pair.result.fixed + pair.result.broken, pair.result.n) == (n, n)


def test_downstream_gains_and_the_written_table(tmp_path: Path) -> None:
    """Guided accuracy and its gain over greedy on the same items, per generation hour; the
    comparisons pair each guided mode with greedy and with the other; all of it lands in
    the JSON."""
    cost = SourceCost(2, 2, 10, 1800.0, 0, 0.0)
    rows = [source_row(s, cost, 2, {"k1": True, "k2": False}) for s in ("rollouts", "paths")]
    runs = {
        "greedy": {"q1": False, "q2": False, "q3": True, "q4": False},
        "guided_rollouts": {"q1": True, "q2": True, "q3": True, "q4": False},
        "guided_paths": {"q1": False, "q2": False, "q3": True, "q4": True},
    }
    outcomes = {"rollouts": {"k1": True, "k2": False}, "paths": {"k1": False, "k2": False}}
    rows = downstream_fields(rows, runs)
    assert rows[0]["guided_gain"] == pytest.approx(0.5)
    assert rows[0]["guided_gain_per_hour"] == pytest.approx(1.0)
    assert rows[1]["guided_accuracy_ci"] == pytest.approx(wilson_interval(2, 4))
    found = comparisons(outcomes, runs)
    assert [(c.baseline, c.method) for c in found] == [
        ("rollouts", "paths"),
        ("greedy", "guided_rollouts"),
        ("greedy", "guided_paths"),
        ("guided_rollouts", "guided_paths"),
    ]
    assert (found[1].result.fixed, found[1].result.broken) == (2, 0)
    path = report("verifier_sources", rows, comparisons=found, results=tmp_path, machine={})
    data = json.loads(path.read_text())
    assert data["rows"][1]["guided_gain"] == pytest.approx(0.25)
    assert len(data["comparisons"]) == 4
