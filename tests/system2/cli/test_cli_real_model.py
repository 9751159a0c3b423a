"""`system2 ask` and `system2 eval` end to end on a real model (SmolLM2-135M-Instruct)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from system2.cli.main import app

pytestmark = pytest.mark.slow


SELF_CONSISTENCY = "{kind: self_consistency, n: 3, max_tokens: 48, seed: 0}"


def _config(tmp_path: Path, model: str, strategy: str = SELF_CONSISTENCY) -> Path:
    """A config of the one real model ``small`` running ``strategy`` (YAML flow mapping)."""
    path = tmp_path / "small.yaml"
    path.write_text(
        f"""
models:
  small: {{kind: transformers, model: {model}, threads: 2}}
policy: {{kind: fixed, models: [small]}}
strategy: {strategy}
logging: {{level: warning}}
"""
    )
    return path


def test_ask_returns_an_answer_with_trace(tmp_path: Path, small_model_name: str) -> None:
    """`ask --json` prints an Answer whose trace holds every sample and real usage."""
    result = CliRunner().invoke(
        app,
        ["ask", "What is 2 + 3?", "--config", str(_config(tmp_path, small_model_name)), "--json"],
    )
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert len(answer["trace"]["candidates"]) == 3
    usage = answer["usage"]["per_model"]["small"]
    assert usage["completion_tokens"] > 0
    assert usage["seconds"] > 0
    assert answer["status"] in {"ok", "no_answer"}


def test_eval_writes_a_resumable_run(tmp_path: Path, small_model_name: str) -> None:
    """`eval` scores items into a run file; a rerun finds nothing left to do."""
    config = _config(tmp_path, small_model_name)
    out = tmp_path / "run.jsonl"
    args = ["eval", "basic_arithmetic", "--config", str(config), "--limit", "2", "--out", str(out)]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    lines = out.read_text().splitlines()
    assert len(lines) == 3  # header + 2 items
    second = CliRunner().invoke(app, args)
    assert second.exit_code == 0, second.output
    assert out.read_text().splitlines() == lines


def test_metastable_search_from_yaml_and_its_graph(tmp_path: Path, small_model_name: str) -> None:
    """A metastable search runs from YAML on the real model, its generated tokens counted
    exactly; the graph in its trace draws and exports through `system2 graph`."""
    strategy = (
        "{kind: metastable, budget_tokens: 160, seed_paths: 2, branch_states: 1, "
        "branch_factor: 2, max_tokens: 48, step_max_tokens: 16, seed: 0}"
    )
    config = _config(tmp_path, small_model_name, strategy)
    out = tmp_path / "run.jsonl"
    args = ["eval", "basic_arithmetic", "--config", str(config), "--limit", "1", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    record = json.loads(out.read_text().splitlines()[1])
    search = record["trace"]["extra"]["search"]
    generated = sum(g["completion_tokens"] for g in record["trace"]["generations"])
    assert search["tokens"] == generated
    assert search["finished_paths"] == len(record["trace"]["candidates"]) >= 2
    assert search["nodes"] == len(record["trace"]["extra"]["graph"]["nodes"])
    png, prefs = tmp_path / "graph.png", tmp_path / "prefs.jsonl"
    drawn = CliRunner().invoke(
        app, ["graph", str(out), "--item", record["id"], "--out", str(png), "--preferences",
              str(prefs)],
    )  # fmt: skip
    assert drawn.exit_code == 0, drawn.output
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert prefs.exists()
