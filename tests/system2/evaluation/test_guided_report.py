"""``guided_report``: items missing from one of two compared modes are named, rows come in
table order, and the table marks significance; ``verifier_provenance`` labels verifiers
and checks triplet sources."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from system2.evaluation.guided import ModeResult
from system2.evaluation.guided_report import order_results, paired_tests, print_guided
from system2.evaluation.runner import summarize
from system2.evaluation.verifier_provenance import (
    VerifierSpec,
    describe_verifiers,
    record_training_data,
    select_verifiers,
    trained_source,
    triplets_source,
)
from workers.verifier.trunk_head import TRUNK_FORMAT

SPEC = VerifierSpec(Path("v"), "llm2", "paths", "llm2")


def _result(mode: str, correct: dict[str, bool], spec: VerifierSpec | None = None) -> ModeResult:
    records = [
        {"id": i, "correct": c, "completion_tokens": 10, "seconds": 1.0, "status": "ok"}
        for i, c in correct.items()
    ]
    base = mode.split("@")[0]
    return ModeResult(
        mode, Path(f"{mode}.jsonl"), summarize(records), None, 2.0, base, spec, correct
    )


def test_missing_items_are_named_and_excluded() -> None:
    """A mode that lacks an item its baseline has is compared on the shared ones, and the
    missing ids are printed with a warning."""
    greedy = _result("greedy", {"a": False, "b": False, "c": True, "d": False})
    guided = _result("guided_greedy@llm2", {"a": True, "b": True, "c": True}, SPEC)
    test = paired_tests([greedy, guided])["guided_greedy@llm2"]
    assert (test.comparison.n, test.comparison.fixed, test.comparison.broken) == (3, 2, 0)
    assert (test.missing_in_mode, test.missing_in_baseline) == (("d",), ())
    assert test.as_dict()["missing_in_mode"] == ["d"]
    console = Console(record=True, width=250)
    print_guided([greedy, guided], console=console)
    text = console.export_text()
    assert "missing in guided_greedy@llm2: d; missing in greedy: none" in text
    assert "+2 / -0" in text
    assert "not significant" in text
    assert "llm2, paths" in text


def test_a_mode_without_its_baseline_is_not_tested() -> None:
    """Guided SC with no SC run this time gets no paired test (rather than a wrong one)."""
    guided = _result("guided_sc@llm2", {"a": True}, SPEC)
    assert paired_tests([guided]) == {}


def test_rows_come_in_table_order() -> None:
    """Greedy and its guided modes first, then the SC family, run order within each."""
    names = ["greedy", "sc", "guided_greedy@a", "guided_sc@a", "sc+verifier_vote@a"]
    results = [_result(n, {"x": True}) for n in names]
    assert [r.mode for r in order_results(results)] == [
        "greedy", "guided_greedy@a", "sc", "guided_sc@a", "sc+verifier_vote@a",
    ]  # fmt: skip


def _saved(directory: Path, fmt: str, source: str | None = None) -> Path:
    directory.mkdir(parents=True)
    (directory / "verifier.json").write_text(json.dumps({"format": fmt}))
    (directory / "metrics.json").write_text(json.dumps({"epochs": []}))
    if source is not None:
        record_training_data(directory, triplets="t.jsonl", source=source, stats={"triplets": 3})
    return directory


def test_labels_are_kinds_unless_two_share_one(tmp_path: Path) -> None:
    """One verifier per kind: labelled by kind; two of a kind: by directory name; the
    recorded source is read back (None when never recorded)."""
    llm2 = _saved(tmp_path / "a" / "llm2_rollouts", "system2-token-verifier", "rollouts")
    trunk = _saved(tmp_path / "trunk_paths", TRUNK_FORMAT, "paths")
    other = _saved(tmp_path / "trunk_old", TRUNK_FORMAT)
    specs = describe_verifiers([llm2, trunk])
    assert [(s.label, s.kind, s.source) for s in specs] == [
        ("llm2", "llm2", "rollouts"),
        ("trunk_head", "trunk_head", "paths"),
    ]
    specs = describe_verifiers([llm2, trunk, other])
    assert [s.label for s in specs] == ["llm2", "trunk_paths", "trunk_old"]
    assert trained_source(other) is None
    metrics = json.loads((trunk / "metrics.json").read_text())
    assert metrics["triplets"] == {"file": "t.jsonl", "source": "paths", "triplets": 3}

    clash = _saved(tmp_path / "b" / "trunk_paths", TRUNK_FORMAT)
    with pytest.raises(ValueError, match="share the directory name 'trunk_paths'"):
        describe_verifiers([trunk, clash])
    with pytest.raises(ValueError, match="given twice"):
        describe_verifiers([llm2, llm2])


def test_kind_and_source_choose_verifiers() -> None:
    """Filters by kind and source; when none is left, every given verifier is described."""
    a = VerifierSpec(Path("a"), "llm2", "rollouts", "llm2")
    b = VerifierSpec(Path("b"), "trunk_head", "paths", "trunk_head")
    assert select_verifiers([a, b], kinds=["trunk_head"]) == [b]
    assert select_verifiers([a, b], source="rollouts") == [a]
    assert select_verifiers([a, b]) == [a, b]
    with pytest.raises(ValueError, match=r"no verifier is of kind llm2, source paths \(a: llm2"):
        select_verifiers([a, b], kinds=["llm2"], source="paths")
    with pytest.raises(ValueError, match="unknown kind 'trunk'"):
        select_verifiers([a], kinds=["trunk"])
    with pytest.raises(ValueError, match="unknown triplet source 'path'"):
        select_verifiers([a], source="path")


def test_triplet_files_say_their_source() -> None:
    """A header's source is read back; rollout files from before the key count as rollouts."""
    assert triplets_source({"source": "paths"}, "p.jsonl") == "paths"
    assert triplets_source({"kind": "verifier_triplets"}, "r.jsonl") == "rollouts"
    with pytest.raises(ValueError, match=r"x\.jsonl: unknown triplet source 'other'"):
        triplets_source({"source": "other"}, "x.jsonl")
    with pytest.raises(ValueError, match=r"x\.jsonl: no header"):
        triplets_source(None, "x.jsonl")


def test_retrained_weights_change_the_recorded_digest(tmp_path: Path) -> None:
    """A run header records the weights' digest, so a run resumed after the directory was
    retrained into other weights no longer matches its header."""
    trunk = _saved(tmp_path / "trunk", TRUNK_FORMAT, "paths")
    (trunk / "trunk_head.safetensors").write_bytes(b"first weights")
    before = describe_verifiers([trunk])[0].describe()
    metrics = json.loads((trunk / "metrics.json").read_text())
    (trunk / "metrics.json").write_text(json.dumps({**metrics, "seconds": 2.0}))
    assert describe_verifiers([trunk])[0].describe() == before  # metrics are not weights
    (trunk / "trunk_head.safetensors").write_bytes(b"retrained weights")
    after = describe_verifiers([trunk])[0].describe()
    assert after["weights_sha256"] != before["weights_sha256"]
    assert {k: v for k, v in after.items() if k != "weights_sha256"} == {
        k: v for k, v in before.items() if k != "weights_sha256"
    }
