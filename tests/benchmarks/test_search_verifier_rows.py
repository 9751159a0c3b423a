"""The search benchmark's ``value: verifier`` rows: planned beside the confidence-valued
searches at the same budget, compared with SC@k on the same items, rebuilt from run files.

Run files here are synthetic (written by the test, no model runs).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

import benchmarks.search as search
from benchmarks.search import (
    against_baseline,
    search_plan,
    verifier_dir,
    verifier_fields,
    with_token_ratio,
)
from system2.evaluation.stats import mcnemar_exact_p, wilson_interval
from workers.verifier import TrunkHead


def _args(**overrides: Any) -> argparse.Namespace:
    settings: dict[str, Any] = {
        "model": "m",
        "datasets": ["gsm_symbolic"],
        "limit": 8,
        "seed": 4321,
        "sample_seed": 0,
        "k": 6,
        "max_tokens": 320,
        "embedding_merge": False,
        "verifier": None,
        "from_runs": False,
        "engine": "transformers",
    }
    return argparse.Namespace(**(settings | overrides))


def test_the_verifier_rows_are_the_same_searches_valued_by_the_verifier(tmp_path: Path) -> None:
    """With ``--verifier`` the plan gains step_beam_verifier and metastable_verifier, each
    its confidence twin with only ``value`` changed (same budget, seed, limits)."""
    plain = dict(search_plan(_args(), 700))
    assert list(plain) == ["step_beam", "metastable"]
    plan = dict(search_plan(_args(verifier=tmp_path, embedding_merge=True), 700))
    assert list(plan) == [
        "step_beam",
        "metastable",
        "metastable_embedding",
        "step_beam_verifier",
        "metastable_verifier",
    ]
    for name in ("step_beam", "metastable"):
        twin = plan[name + "_verifier"]
        assert twin.value == "verifier"  # type: ignore[union-attr]
        assert plan[name].value == "confidence"  # type: ignore[union-attr]
        assert twin.model_copy(update={"value": "confidence"}) == plan[name]
        assert twin.budget_tokens == 700  # type: ignore[union-attr]
    # Rebuilding from runs lists them too (each is skipped where its run file is missing).
    assert "metastable_verifier" in dict(search_plan(_args(from_runs=True), 700))


def test_comparisons_pair_each_run_with_the_baseline_on_shared_items() -> None:
    """Fixed/broken counts and the exact McNemar p against SC, per data set; a data set
    without the baseline is skipped, and items only one run has are excluded."""
    sc = {"a": True, "b": False, "c": False, "d": False, "e": True}
    verified = {"a": True, "b": True, "c": True, "d": True, "e": False, "f": True}
    runs = {"gsm": {"sc6": sc, "metastable_verifier": verified}, "other": {"step_beam": sc}}
    (c,) = against_baseline("sc6", runs)
    assert (c.label, c.baseline, c.method) == ("gsm", "sc6", "metastable_verifier")
    r = c.result
    assert (r.n, r.fixed, r.broken, r.only_b) == (5, 3, 1, 1)
    assert r.p_value == pytest.approx(mcnemar_exact_p(3, 1)) == pytest.approx(0.625)
    assert r.interval_b == pytest.approx(wilson_interval(4, 5))


def test_token_ratio_is_against_the_same_data_sets_sc() -> None:
    rows = [
        {"dataset": "a", "strategy": "sc6", "tokens_mean": 200.0},
        {"dataset": "a", "strategy": "step_beam_verifier", "tokens_mean": 210.0},
        {"dataset": "b", "strategy": "sc6", "tokens_mean": 0.0},
        {"dataset": "b", "strategy": "metastable", "tokens_mean": 5.0},
        {"dataset": "c", "strategy": "metastable", "tokens_mean": 5.0},
    ]
    ratios = [r["tokens_vs_sc"] for r in with_token_ratio(rows, "sc6")]
    assert ratios == [1.0, pytest.approx(1.05), None, None, None]


def _write_run(path: Path, name: str, correct: dict[str, bool], tokens: int) -> None:
    header = {"type": "header", "dataset": "gsm_symbolic", "limit": 8, "seed": 4321}
    lines = [header]
    for item, right in correct.items():
        extra = {}
        if name.startswith("metastable"):
            extra = {"search": {"kind": "metastable", "nodes": 9, "clusters": 3, "sparse_edges": 1}}
        lines.append(
            {
                "type": "item",
                "id": item,
                "correct": right,
                "status": "ok",
                "completion_tokens": tokens,
                "seconds": 2.0,
                "trace": {"extra": extra},
            }
        )
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


async def test_from_runs_reports_verifier_rows_with_intervals_and_tests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rebuilt from synthetic run files, the JSON has a row per search (the verifier rows
    marked ``value: verifier``, with their Wilson interval and token ratio) and a
    comparison of each with SC@6 on the same items."""
    monkeypatch.setattr(search, "RESULTS", tmp_path)
    (tmp_path / "runs").mkdir()
    items = [f"q{i}" for i in range(8)]
    outcomes = {
        "sc6": [True, True, False, False, False, False, True, False],
        "step_beam": [True, False, False, False, False, False, True, False],
        "metastable": [True, True, False, False, False, False, True, False],
        "step_beam_verifier": [True, True, True, True, True, False, True, False],
        "metastable_verifier": [False, True, True, True, True, True, True, True],
    }
    for name, right in outcomes.items():
        tokens = 300 if name == "sc6" else 330
        _write_run(tmp_path / "runs" / f"search_gsm_symbolic_{name}.jsonl", name,
                   dict(zip(items, right, strict=True)), tokens)  # fmt: skip
    await search.run(_args(from_runs=True))

    data = json.loads((tmp_path / "search.json").read_text())
    rows = {r["strategy"]: r for r in data["rows"]}
    assert list(rows) == list(outcomes)
    meta = rows["metastable_verifier"]
    assert meta["value"] == "verifier"
    assert rows["metastable"]["value"] == "confidence"
    assert meta["accuracy"] == 7 / 8
    assert meta["accuracy_ci"] == pytest.approx(wilson_interval(7, 8))
    assert meta["budget_tokens"] == 300
    assert meta["tokens_vs_sc"] == pytest.approx(1.1)
    assert meta["nodes"] == 9
    pairs = {c["method"]: c for c in data["comparisons"]}
    assert set(pairs) == set(outcomes) - {"sc6"}
    assert all(c["baseline"] == "sc6" and c["n"] == 8 for c in pairs.values())
    assert (pairs["metastable_verifier"]["fixed"], pairs["metastable_verifier"]["broken"]) == (5, 1)
    assert pairs["metastable_verifier"]["p_value"] == pytest.approx(mcnemar_exact_p(5, 1))
    assert pairs["step_beam_verifier"]["fixed_ids"] == ["q2", "q3", "q4"]


def test_verifier_option_names_a_saved_verifier(tmp_path: Path) -> None:
    """``--verifier`` refuses a directory without a saved verifier, naming it; a saved trunk
    head is accepted and recorded in the verifier rows' run headers (not the others')."""
    with pytest.raises(argparse.ArgumentTypeError, match="no saved verifier"):
        verifier_dir(str(tmp_path))
    TrunkHead(8, 2).save(tmp_path / "head", fingerprint=False)
    path = verifier_dir(str(tmp_path / "head"))
    plan = dict(search_plan(_args(verifier=path), 100))
    assert verifier_fields(plan["metastable"], _args(verifier=path)) == {}
    assert verifier_fields(plan["metastable_verifier"], _args(verifier=path)) == {
        "verifier": str(path),
        "verifier_kind": "trunk_head",
    }
