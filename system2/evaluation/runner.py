"""Run an answer function over evaluation items into a resumable JSONL file.

File format: line 1 is ``{"type": "header", **run_config}``; every finished item appends one
``{"type": "item", ...}`` line, flushed and fsynced, so a crash loses at most the item in
flight. Rerunning with the same file skips ids already recorded (and, unless
``retry_failed``, items recorded as failed), and refuses a different run_config or a file
written by other code (unless ``allow_mixed``; see ``system2.runfile``). When an id
appears more than once (a retried failure), the last line wins. The loop is the one every
resumable run shares (``system2.resumable_run``); this module adds answering and scoring
one item (``eval_record``, which ``system2 eval --ray`` runs in Ray actors instead, handing
the records to the same loop through ``record_fn``), and the summary.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from rich.console import Console
from rich.table import Table

from orchestrator.types import Answer, Query
from system2.resumable_run import ResumableRun
from system2.runfile import RunConfigMismatchError

from .candidates import candidate_fields
from .datasets import EvalItem, score_item
from .stats import format_interval, wilson_interval
from .vote_ties import VoteTies, count_ties

__all__ = [
    "RecordFn",
    "RunConfigMismatchError",
    "RunSummary",
    "eval_record",
    "failed_record",
    "print_summary",
    "read_records",
    "run_eval",
    "summarize",
]

log = structlog.get_logger(__name__)

AnswerFn = Callable[[Query], Awaitable[Answer]]
RecordFn = Callable[[EvalItem], Awaitable[dict[str, Any]]]
"""Makes one item's record (answered and scored), e.g. elsewhere on a Ray cluster."""


@dataclass(frozen=True)
class RunSummary:
    """Totals over the items of one run (including those finished by earlier attempts)."""

    n: int
    correct: int
    accuracy: float
    completion_tokens_total: int
    completion_tokens_mean: float
    seconds_total: float
    seconds_mean: float
    failures: int
    oracle: float | None = None
    """Share of items some candidate got right (items with two or more candidates)."""
    rerankers: dict[str, float] = field(default_factory=dict)
    """Pass rate of each compared reranker's pick, plus ``random (expected)``."""
    ties: VoteTies = field(default_factory=VoteTies)
    """How many items' votes tied at the top, and the rule that broke each tie."""


def _describe(records: Collection[Mapping[str, Any]]) -> str:
    correct = sum(1 for r in records if r["correct"])
    accuracy = f"{correct / len(records):.1%}" if records else "-"
    return f"accuracy {accuracy} ({correct}/{len(records)})"


_EVAL_RUN: ResumableRun[EvalItem, str] = ResumableRun(
    record_type="item",
    key=lambda item: item.id,
    record_key=lambda r: str(r["id"]),
    label="eval",
    describe=_describe,
    log_event="eval.run",
)


def read_records(path: Path) -> tuple[dict[str, Any] | None, dict[str, dict[str, Any]]]:
    """The header and the item records (last per id) of a run file. A torn final line,
    left by a crash mid-write, is ignored."""
    return _EVAL_RUN.read(path)


def failed_record(item: EvalItem, detail: str = "", seconds: float = 0.0) -> dict[str, Any]:
    """The record of ``item`` failing (no answer), with ``detail`` saying why."""
    return {
        "type": "item",
        "id": item.id,
        "question": item.query.text,
        "gold": item.gold,
        "predicted": None,
        "correct": False,
        "status": "failed",
        "completion_tokens": 0,
        "seconds": seconds,
        "detail": detail,
        "trace": None,
    }


async def eval_record(item: EvalItem, answer_fn: AnswerFn) -> dict[str, Any]:
    """``item`` answered by ``answer_fn`` and scored, as its run-file record; an
    ``Exception`` from either is recorded as the item's failure."""
    record = failed_record(item)
    start = time.perf_counter()
    try:
        answer = await answer_fn(item.query)
    except Exception as exc:
        record["seconds"] = time.perf_counter() - start
        record["detail"] = f"answer_fn raised {type(exc).__name__}: {exc}"
        log.warning("eval.item.failed", id=item.id, error=record["detail"])
        return record
    record.update(
        predicted=answer.answer,
        status=answer.status,
        completion_tokens=answer.usage.completion_tokens,
        seconds=time.perf_counter() - start,
        trace=answer.trace.model_dump(mode="json"),
    )
    try:
        # Off the event loop: HumanEval scoring runs a subprocess for up to its timeout.
        outcome = await asyncio.to_thread(score_item, item, answer.answer)
    except Exception as exc:
        record["status"] = "failed"
        record["detail"] = f"scoring raised {type(exc).__name__}: {exc}"
        log.warning("eval.item.scoring_failed", id=item.id, error=record["detail"])
        return record
    record["correct"] = outcome.correct
    record["detail"] = outcome.detail
    if outcome.raw_score is not None:
        record["score"] = outcome.raw_score
    try:
        record.update(await asyncio.to_thread(candidate_fields, item, answer.trace))
    except Exception as exc:  # the chosen answer's verdict stands; say what went wrong
        record["candidates_error"] = f"scoring candidates raised {type(exc).__name__}: {exc}"
        log.warning("eval.item.candidates_failed", id=item.id, error=record["candidates_error"])
    return record


def _recorded_by(answer_fn: AnswerFn | None) -> RecordFn:
    if answer_fn is None:
        raise ValueError("run_eval needs an answer_fn or a record_fn")

    async def record(item: EvalItem) -> dict[str, Any]:
        return await eval_record(item, answer_fn)

    return record


def summarize(records: Sequence[Mapping[str, Any]]) -> RunSummary:
    """Totals and means over item records (as written by ``run_eval``)."""
    n = len(records)
    correct = sum(1 for r in records if r["correct"])
    with_oracle = [r for r in records if "oracle" in r]
    reranked = [r for r in records if "rerankers" in r]
    rerankers: dict[str, float] = {}
    if reranked:
        rerankers["random (expected)"] = sum(r["random_expected"] for r in reranked) / n
        for kind in dict.fromkeys(k for r in reranked for k in r["rerankers"]):
            rerankers[kind] = sum(bool(r["rerankers"].get(kind)) for r in reranked) / n
    tokens = sum(int(r["completion_tokens"]) for r in records)
    seconds = sum(float(r["seconds"]) for r in records)
    return RunSummary(
        n=n,
        correct=correct,
        accuracy=correct / n if n else 0.0,
        completion_tokens_total=tokens,
        completion_tokens_mean=tokens / n if n else 0.0,
        seconds_total=seconds,
        seconds_mean=seconds / n if n else 0.0,
        failures=sum(1 for r in records if r["status"] == "failed"),
        oracle=sum(bool(r["oracle"]) for r in with_oracle) / n if with_oracle else None,
        rerankers=rerankers,
        ties=count_ties(records),
    )


async def run_eval(
    items: Sequence[EvalItem],
    answer_fn: AnswerFn | None,
    out: Path,
    *,
    run_config: Mapping[str, Any],
    progress: bool = True,
    retry_failed: bool = False,
    allow_mixed: bool = False,
    console: Console | None = None,
    concurrency: int = 1,
    record_fn: RecordFn | None = None,
) -> RunSummary:
    """Answer and score every item not yet in ``out``, one at a time, appending a record per
    item. Returns the summary over all ``items``, resumed ones included.

    ``answer_fn`` raising an ``Exception`` records the item as failed; ``BaseException``
    (KeyboardInterrupt, cancellation) propagates and the item is simply not recorded.
    With ``concurrency > 1`` that many items are in flight at once (so a worker can batch
    them) and records are appended in completion order; an interruption loses only the
    items in flight. ``allow_mixed`` resumes a file written by another version or revision
    of the code (marking where the code changed) instead of refusing it.

    ``record_fn`` makes each item's record instead of ``answer_fn`` (give one of the two):
    ``system2.ray.evaluation`` answers and scores items in Ray actors this way, while this
    loop (in the driver) still writes every record, once per item.
    """
    if record_fn is None:
        record_fn = _recorded_by(answer_fn)
    records = await _EVAL_RUN.run(
        items,
        record_fn,
        out,
        config=run_config,
        retry_failed=retry_failed,
        allow_mixed=allow_mixed,
        concurrency=concurrency,
        progress=progress,
        console=console,
    )
    summary = summarize(records)
    log.info("eval.run.done", out=str(out), n=summary.n, accuracy=summary.accuracy)
    return summary


def print_summary(
    summary: RunSummary, *, title: str = "evaluation", console: Console | None = None
) -> None:
    """Print a summary as a two-column rich table."""
    table = Table(title=title, show_header=False)
    table.add_column("metric", style="bold")
    table.add_column("value", justify="right")
    table.add_row("items", str(summary.n))
    table.add_row("correct", str(summary.correct))
    interval = format_interval(*wilson_interval(summary.correct, summary.n))
    table.add_row("accuracy (95% interval)", f"{summary.accuracy:.1%} {interval}")
    table.add_row("failures", str(summary.failures))
    for kind, rate in summary.rerankers.items():
        table.add_row(f"pass@1 {kind}", f"{rate:.1%}")
    if summary.oracle is not None:
        table.add_row("oracle@n", f"{summary.oracle:.1%}")
    if summary.ties.votes:
        table.add_row("vote ties (rule)", summary.ties.describe())
    table.add_row("completion tokens (total)", f"{summary.completion_tokens_total:,}")
    table.add_row("completion tokens (mean)", f"{summary.completion_tokens_mean:.1f}")
    table.add_row("seconds (total)", f"{summary.seconds_total:.1f}")
    table.add_row("seconds (mean)", f"{summary.seconds_mean:.2f}")
    (console or Console()).print(table)
