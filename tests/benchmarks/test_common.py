"""The benchmark table: intervals printed beside accuracies, paired comparisons in the JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.common import Comparison, accuracy_ci, report


def test_report_prints_intervals_and_comparisons(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An ``x_ci`` column prints inside ``x``; comparisons print and go to the JSON."""
    greedy = {"a": False, "b": False, "c": True, "d": True}
    sc = {"a": True, "b": True, "c": True, "d": False}
    rows = [
        {"strategy": "greedy", "accuracy": 0.5, "accuracy_ci": accuracy_ci(greedy)},
        {"strategy": "sc", "accuracy": 0.75, "accuracy_ci": accuracy_ci(sc)},
    ]
    pair = Comparison.of("gsm", ("greedy", greedy), ("sc", sc))
    path = report("t", rows, comparisons=[pair], results=tmp_path, machine={"m": 1})
    out = capsys.readouterr().out
    assert "75.0% [30.1%, 95.4%]" in out
    assert "accuracy_ci" not in out
    assert "not significant" in out
    data = json.loads(path.read_text())
    assert data["machine"] == {"m": 1}
    assert data["rows"][1]["accuracy_ci"] == pytest.approx([0.3006, 0.9544], abs=1e-4)
    (comparison,) = data["comparisons"]
    assert (comparison["label"], comparison["baseline"], comparison["method"]) == (
        "gsm",
        "greedy",
        "sc",
    )
    assert (comparison["fixed_ids"], comparison["broken_ids"]) == (["a", "b"], ["d"])
    assert comparison["p_value"] == pytest.approx(1.0)
