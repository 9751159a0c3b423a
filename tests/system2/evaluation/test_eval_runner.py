from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

import pytest

from orchestrator.types import Answer, Query, Trace, Usage
from system2.code_version import running_code
from system2.evaluation import (
    EvalItem,
    RunConfigMismatchError,
    load_dataset,
    read_records,
    run_eval,
)

CONFIG = {"name": "scripted", "strategy": "greedy", "k": 1}


def make_items(n: int = 4) -> list[EvalItem]:
    return [
        EvalItem(
            id=f"q{i}",
            query=Query(id=f"q{i}", text=f"What is {i} + 2?", task="math"),
            gold=str(i + 2),
        )
        for i in range(n)
    ]


def scripted_answer_fn_for(
    script: Mapping[str, str | Exception],
    *,
    interrupt_on_call: int | None = None,
    calls: list[str] | None = None,
) -> Callable[[Query], Awaitable[Answer]]:
    """An answer function that replays ``script`` (answer text, or an exception to raise)."""
    seen = calls if calls is not None else []

    async def scripted_answer_fn(query: Query) -> Answer:
        seen.append(query.id)
        if interrupt_on_call is not None and len(seen) == interrupt_on_call:
            raise KeyboardInterrupt
        reply = script[query.id]
        if isinstance(reply, Exception):
            raise reply
        usage = Usage()
        usage.add("scripted-model", prompt_tokens=20, completion_tokens=10, seconds=0.01)
        return Answer(
            query=query,
            answer=reply,
            text=f"The answer is {reply}.",
            usage=usage,
            trace=Trace(query_id=query.id),
        )

    return scripted_answer_fn


def item_lines(path: Path) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return [r for r in lines if r["type"] == "item"]


ALL_RIGHT = {"q0": "2", "q1": "3", "q2": "4", "q3": "5"}


async def test_run_writes_header_and_items(tmp_path: Path) -> None:
    """A run writes the header first, then one scored record per item."""
    out = tmp_path / "run.jsonl"
    script = {**ALL_RIGHT, "q3": "6"}
    summary = await run_eval(
        make_items(), scripted_answer_fn_for(script), out, run_config=CONFIG, progress=False
    )
    first = json.loads(out.read_text().splitlines()[0])
    assert first == {"type": "header", **CONFIG, "code": running_code().as_json()}
    records = item_lines(out)
    assert [r["id"] for r in records] == ["q0", "q1", "q2", "q3"]
    assert [r["correct"] for r in records] == [True, True, True, False]
    assert records[0]["completion_tokens"] == 10
    assert records[0]["trace"] == {**Trace(query_id="q0").model_dump(mode="json")}
    assert (summary.n, summary.correct, summary.accuracy) == (4, 3, 0.75)
    assert summary.completion_tokens_total == 40
    assert summary.completion_tokens_mean == 10.0
    assert summary.failures == 0


async def test_resume_after_crash_runs_only_missing_items(tmp_path: Path) -> None:
    """After a crash on the 3rd item, a rerun answers only the items not yet recorded."""
    out = tmp_path / "run.jsonl"
    items = make_items()
    with pytest.raises(KeyboardInterrupt):
        await run_eval(
            items,
            scripted_answer_fn_for(ALL_RIGHT, interrupt_on_call=3),
            out,
            run_config=CONFIG,
            progress=False,
        )
    assert [r["id"] for r in item_lines(out)] == ["q0", "q1"]

    calls: list[str] = []
    summary = await run_eval(
        items,
        scripted_answer_fn_for(ALL_RIGHT, calls=calls),
        out,
        run_config=CONFIG,
        progress=False,
    )
    assert calls == ["q2", "q3"]
    assert [r["id"] for r in item_lines(out)] == ["q0", "q1", "q2", "q3"]
    assert (summary.n, summary.correct) == (4, 4)


async def test_torn_last_line_is_redone(tmp_path: Path) -> None:
    """A half-written final line (crash mid-write) is dropped and that item is redone."""
    out = tmp_path / "run.jsonl"
    items = make_items()
    await run_eval(
        items[:2], scripted_answer_fn_for(ALL_RIGHT), out, run_config=CONFIG, progress=False
    )
    with out.open("a") as f:
        f.write('{"type": "item", "id": "q2", "quest')
    calls: list[str] = []
    summary = await run_eval(
        items,
        scripted_answer_fn_for(ALL_RIGHT, calls=calls),
        out,
        run_config=CONFIG,
        progress=False,
    )
    assert calls == ["q2", "q3"]
    assert summary.n == 4
    _, records = read_records(out)
    assert sorted(records) == ["q0", "q1", "q2", "q3"]


async def test_header_mismatch_is_refused(tmp_path: Path) -> None:
    """Resuming with a different run_config raises and names the differing keys."""
    out = tmp_path / "run.jsonl"
    items = make_items(2)
    await run_eval(items, scripted_answer_fn_for(ALL_RIGHT), out, run_config=CONFIG, progress=False)
    before = out.read_text()
    other = {**CONFIG, "k": 8, "temperature": 0.7}
    with pytest.raises(RunConfigMismatchError, match="differing keys: k, temperature"):
        await run_eval(
            items, scripted_answer_fn_for(ALL_RIGHT), out, run_config=other, progress=False
        )
    assert out.read_text() == before


async def test_failures_are_recorded_and_not_retried(tmp_path: Path) -> None:
    """An answer_fn error is recorded as a failed item, skipped on resume unless retried."""
    out = tmp_path / "run.jsonl"
    items = make_items(3)
    script: dict[str, str | Exception] = {**ALL_RIGHT, "q1": RuntimeError("worker down")}
    summary = await run_eval(
        items, scripted_answer_fn_for(script), out, run_config=CONFIG, progress=False
    )
    failed = item_lines(out)[1]
    assert failed["status"] == "failed"
    assert failed["correct"] is False
    assert "RuntimeError: worker down" in str(failed["detail"])
    assert (summary.n, summary.correct, summary.failures) == (3, 2, 1)

    calls: list[str] = []
    await run_eval(
        items, scripted_answer_fn_for(script, calls=calls), out, run_config=CONFIG, progress=False
    )
    assert calls == []

    summary = await run_eval(
        items,
        scripted_answer_fn_for(ALL_RIGHT, calls=calls),
        out,
        run_config=CONFIG,
        progress=False,
        retry_failed=True,
    )
    assert calls == ["q1"]
    assert (summary.correct, summary.failures) == (3, 0)
    _, records = read_records(out)
    assert records["q1"]["status"] == "ok"


async def test_progress_bar_renders(tmp_path: Path) -> None:
    """With progress on, the bar shows the running accuracy."""
    from io import StringIO

    from rich.console import Console

    buffer = StringIO()
    console = Console(file=buffer, force_terminal=False, width=120)
    await run_eval(
        make_items(2),
        scripted_answer_fn_for(ALL_RIGHT),
        tmp_path / "run.jsonl",
        run_config=CONFIG,
        progress=True,
        console=console,
    )
    assert "accuracy 100.0% (2/2)" in buffer.getvalue()


async def test_code_items_are_scored_in_the_sandbox(tmp_path: Path) -> None:
    """The runner scores HumanEval answers by running their tests (off the event loop)."""
    items = load_dataset("humaneval", limit=2, seed=0)
    script = {
        items[0].id: items[0].metadata["canonical_solution"],
        items[1].id: "    return []\n",
    }
    summary = await run_eval(
        items,
        scripted_answer_fn_for(script),
        tmp_path / "code.jsonl",
        run_config={},
        progress=False,
    )
    records = item_lines(tmp_path / "code.jsonl")
    assert [r["correct"] for r in records] == [True, False]
    assert records[1]["detail"] == "tests failed: AssertionError"
    assert summary.accuracy == 0.5


async def test_concurrent_run_records_every_item_once(tmp_path: Path) -> None:
    """With several items in flight, every item is recorded exactly once and scored."""
    out = tmp_path / "run.jsonl"
    summary = await run_eval(
        make_items(),
        scripted_answer_fn_for(ALL_RIGHT),
        out,
        run_config=CONFIG,
        progress=False,
        concurrency=3,
    )
    assert summary.n == 4
    assert summary.correct == 4
    assert sorted(r["id"] for r in item_lines(out)) == ["q0", "q1", "q2", "q3"]
