"""Comparing runs: rows with intervals and vote ties, paired tests, the plot and its JSON."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from io import StringIO
from pathlib import Path

import pytest
from rich.console import Console

from orchestrator.aggregation import majority_vote
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


def scripted_answer_fn_for(
    right: int, tokens: int, *, tie_every: int = 0
) -> Callable[[Query], Awaitable[Answer]]:
    """Answers the first ``right`` items correctly and the rest wrongly, ``tokens`` each;
    with ``tie_every`` > 0, every that-many-th item's trace holds a tied vote."""

    async def scripted_answer_fn(query: Query) -> Answer:
        index = int(query.id[1:])
        usage = Usage()
        usage.add("scripted-model", prompt_tokens=5, completion_tokens=tokens, seconds=0.0)
        reply = str(index + 1) if index < right else "-1"
        trace = Trace(query_id=query.id)
        if tie_every:
            voters = [reply, "0"] if index % tie_every == 0 else [reply, reply, "0"]
            trace.vote = majority_vote(voters).to_record()
        return Answer(query=query, answer=reply, text=reply, usage=usage, trace=trace)

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


async def test_rows_carry_wilson_intervals_and_vote_ties(tmp_path: Path) -> None:
    """Each row has its accuracy's 95% Wilson interval; votes and ties are counted."""
    small, large = await make_runs(tmp_path)
    voted = tmp_path / "voted.jsonl"
    await run_eval(
        make_items(),
        scripted_answer_fn_for(2, 5, tie_every=2),
        voted,
        run_config={},
        progress=False,
    )
    rows = compare([load_run(p) for p in (small, large, voted)])
    assert rows[0].interval == pytest.approx((0.0456, 0.6994), abs=1e-4)  # 1/4
    assert rows[1].interval == pytest.approx((0.3006, 0.9544), abs=1e-4)  # 3/4
    assert (rows[0].ties.votes, rows[0].ties.ties) == (0, 0)
    assert (rows[2].ties.votes, rows[2].ties.ties, rows[2].ties.by_rule) == (4, 2, {"first": 2})


async def test_later_runs_paired_against_first(tmp_path: Path) -> None:
    """The second run fixed q1 and q2 and broke nothing: p = 0.5, not significant."""
    rows = compare([load_run(p) for p in await make_runs(tmp_path)])
    assert rows[0].vs_baseline is None
    paired = rows[1].vs_baseline
    assert paired is not None
    assert rows[1].baseline == "small"
    assert (paired.n, paired.fixed, paired.broken) == (4, 2, 0)
    assert paired.fixed_ids == ("q1", "q2")
    assert paired.p_value == pytest.approx(0.5)
    assert not paired.significant


async def test_printed_report_shows_interval_and_paired_test(tmp_path: Path) -> None:
    """The table prints the interval, the fixed/broken counts, p and 'not significant'."""
    rows = compare([load_run(p) for p in await make_runs(tmp_path)])
    buffer = StringIO()
    print_report(rows, console=Console(file=buffer, width=200))
    text = buffer.getvalue()
    assert "[30.1%, 95.4%]" in text
    assert "paired against small" in text
    assert "not significant" in text
    line = next(line for line in text.splitlines() if "vote@8" in line and "+50.0%" in line)
    cells = [cell.strip() for cell in line.split("│")[1:-1]]
    assert cells[4:] == ["+50.0%", "2", "0", "0.5", "not significant"]


async def test_paired_excludes_items_not_in_both(tmp_path: Path) -> None:
    """Items only one run has are left out of the paired test and counted."""
    small, _ = await make_runs(tmp_path)
    partial = tmp_path / "partial.jsonl"
    await run_eval(
        make_items()[:3], scripted_answer_fn_for(3, 1), partial, run_config={}, progress=False
    )
    rows = compare([load_run(small), load_run(partial)])
    paired = rows[1].vs_baseline
    assert paired is not None
    assert (paired.n, paired.only_a, paired.only_b) == (3, 1, 0)


async def test_plot_json_carries_intervals_and_paired_fields(tmp_path: Path) -> None:
    """The JSON beside the plot has each row's interval and its paired comparison."""
    rows = compare([load_run(p) for p in await make_runs(tmp_path)])
    data = json.loads(plot_accuracy_vs_tokens(rows, tmp_path / "p.png").read_text())
    assert data[0]["vs_baseline"] is None
    assert data[1]["interval"] == pytest.approx([0.3006, 0.9544], abs=1e-4)
    assert data[1]["vs_baseline"]["fixed_ids"] == ["q1", "q2"]
    assert data[1]["vs_baseline"]["verdict"] == "not significant"
    assert data[1]["ties"] == {"votes": 0, "ties": 0, "by_rule": {}}
