from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from io import StringIO
from pathlib import Path

from rich.console import Console

from orchestrator.types import Answer, Query, Trace, Usage
from system2.evaluation import (
    EvalItem,
    compare,
    load_run,
    plot_accuracy_vs_tokens,
    print_report,
    run_eval,
)


def make_items() -> list[EvalItem]:
    return [
        EvalItem(
            id=f"q{i}", query=Query(id=f"q{i}", text=f"{i} + 1?", task="math"), gold=str(i + 1)
        )
        for i in range(4)
    ]


def scripted_answer_fn_for(right: int, tokens: int) -> Callable[[Query], Awaitable[Answer]]:
    """Answers the first ``right`` items correctly and the rest wrongly, ``tokens`` each."""

    async def scripted_answer_fn(query: Query) -> Answer:
        index = int(query.id[1:])
        usage = Usage()
        usage.add("scripted-model", prompt_tokens=5, completion_tokens=tokens, seconds=0.0)
        reply = str(index + 1) if index < right else "-1"
        return Answer(
            query=query, answer=reply, text=reply, usage=usage, trace=Trace(query_id=query.id)
        )

    return scripted_answer_fn


async def make_runs(tmp_path: Path) -> list[Path]:
    small = tmp_path / "small.jsonl"
    large = tmp_path / "large.jsonl"
    await run_eval(
        make_items(), scripted_answer_fn_for(1, 10), small, run_config={"k": 1}, progress=False
    )
    await run_eval(
        make_items(),
        scripted_answer_fn_for(3, 80),
        large,
        run_config={"name": "vote@8", "k": 8},
        progress=False,
    )
    return [small, large]


async def test_compare_rows(tmp_path: Path) -> None:
    """Rows carry the run name (header name or file stem), n, accuracy and mean tokens."""
    rows = compare([load_run(p) for p in await make_runs(tmp_path)])
    assert [(r.name, r.n, r.accuracy, r.mean_completion_tokens) for r in rows] == [
        ("small", 4, 0.25, 10.0),
        ("vote@8", 4, 0.75, 80.0),
    ]


async def test_print_report_table(tmp_path: Path) -> None:
    """The rich table lists every run with its accuracy."""
    rows = compare([load_run(p) for p in await make_runs(tmp_path)])
    buffer = StringIO()
    print_report(rows, console=Console(file=buffer, width=120))
    text = buffer.getvalue()
    assert "small" in text
    assert "vote@8" in text
    assert "75.0%" in text


async def test_plot_writes_png_and_json(tmp_path: Path) -> None:
    """The plot is a non-empty PNG and the rows are written as JSON beside it."""
    rows = compare([load_run(p) for p in await make_runs(tmp_path)])
    png = tmp_path / "plots" / "acc.png"
    json_path = plot_accuracy_vs_tokens(rows, png, log_x=True)
    data = png.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 1000
    assert json_path == png.with_suffix(".json")
    assert [r["name"] for r in json.loads(json_path.read_text())] == ["small", "vote@8"]
