"""Collect SelectLLM training labels: for each (item, model), is the model's majority
answer over ``samples`` samples right?

Every pair runs through the normal seam: an ``Orchestrator`` with a ``FixedPolicy`` on
that one model and ``SelfConsistencyConfig(n=samples)``, so prompts, answer extraction and
voting are exactly those of evaluation; the answer is judged by ``score_item``.

File format (like the eval runner's): line 1 is ``{"type": "header", **config}``; each
finished pair appends one ``{"type": "label", ...}`` line, flushed and fsynced. A rerun with
the same file skips pairs already recorded (and, unless ``retry_failed``, pairs recorded as
failed), refuses a different config, and ignores a torn final line; for a pair recorded more
than once the last line wins.

A label record holds: ``item``, ``model``, ``question``, ``task``, ``status`` (the answer's:
``ok``, ``no_answer``, or ``failed`` when the call or the scoring raised), ``label`` (1 if
the majority answer is right, 0 if not, including no parsable answer; None when failed),
``answer`` (the majority answer), ``margin`` (vote margin), ``votes`` (answer -> count),
``seconds`` (the model's time for the pair's ``samples`` samples as measured at the worker
seam, i.e. ``Usage.worker_seconds``; wall time when the call raised) and
``completion_tokens``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from rich.console import Console

from orchestrator.prompts import PromptConfig
from orchestrator.strategies.config import SelfConsistencyConfig
from orchestrator.types import TaskType
from system2.evaluation.datasets import EvalItem, score_item
from system2.evaluation.runfile import (
    RunFileWriter,
    bounded_map,
    is_settled,
    jsonable,
    prepare_run_file,
    read_run_file,
    run_progress,
)
from workers.base import Worker

if TYPE_CHECKING:
    from orchestrator.orchestrator import Orchestrator

__all__ = ["LabelStats", "collect_labels", "label_stats", "read_labels"]

log = structlog.get_logger(__name__)

Pair = tuple[str, str]
"""(item id, model name)."""


@dataclass(frozen=True)
class LabelStats:
    """One model's labels: pairs recorded, right (label 1), failed, and mean cost per item
    over the pairs that did not fail."""

    pairs: int
    positives: int
    failed: int
    mean_seconds: float
    mean_completion_tokens: float

    @property
    def labelled(self) -> int:
        return self.pairs - self.failed


def label_stats(
    records: Sequence[Mapping[str, Any]], models: Sequence[str]
) -> dict[str, LabelStats]:
    """Per-model counts and mean latency / tokens (NaN for a model with no usable pair)."""
    stats = {}
    for model in models:
        mine = [r for r in records if r["model"] == model]
        usable = [r for r in mine if r["label"] is not None]
        n = len(usable)
        stats[model] = LabelStats(
            pairs=len(mine),
            positives=sum(int(r["label"]) for r in usable),
            failed=len(mine) - n,
            mean_seconds=sum(float(r["seconds"]) for r in usable) / n if n else float("nan"),
            mean_completion_tokens=(
                sum(int(r["completion_tokens"]) for r in usable) / n if n else float("nan")
            ),
        )
    return stats


def read_labels(path: Path | str) -> tuple[dict[str, Any] | None, dict[Pair, dict[str, Any]]]:
    """The header and the label records (last per pair) of a labels file."""
    return read_run_file(
        Path(path), record_type="label", key=lambda r: (str(r["item"]), str(r["model"]))
    )


async def collect_labels(
    items: Sequence[EvalItem],
    workers: Mapping[str, Worker],
    out: Path | str,
    *,
    samples: int = 10,
    temperature: float = 0.7,
    top_p: float = 0.95,
    max_tokens: int = 512,
    seed: int | None = 0,
    prompts: Mapping[TaskType, PromptConfig] | None = None,
    run_config: Mapping[str, Any] | None = None,
    retry_failed: bool = False,
    concurrency: int = 1,
    progress: bool = True,
    console: Console | None = None,
) -> dict[str, LabelStats]:
    """Label every (item, model) pair into ``out`` (resumable); returns per-model stats.

    The header holds the models (in ``workers`` order, the router's pool order), the
    sampling settings, the prompts and ``run_config`` (e.g. data sets, limit, worker configs). With
    ``concurrency`` > 1 that many pairs run at once, so recorded seconds include queueing.
    """
    from orchestrator.orchestrator import Orchestrator  # orchestrator imports this package
    from policies.fixed import FixedPolicy

    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    if not workers:
        raise ValueError("no models to label")
    ids = [item.id for item in items]
    if len(set(ids)) != len(ids):
        raise ValueError("item ids are not unique")
    clash = sorted({"type", "kind", "models", "strategy", "prompts"} & set(run_config or {}))
    if clash:
        raise ValueError(f"run_config must not set {clash}: the collector writes them")
    strategy = SelfConsistencyConfig(
        n=samples, temperature=temperature, top_p=top_p, max_tokens=max_tokens, seed=seed
    )
    config = jsonable(
        {
            "kind": "selectllm_labels",
            "models": list(workers),
            "strategy": strategy.model_dump(mode="json"),
            "prompts": {t: p.model_dump(mode="json") for t, p in (prompts or {}).items()},
            **(run_config or {}),
        }
    )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fresh = prepare_run_file(out, config)
    _, records = read_labels(out)

    def settled(pair: Pair) -> bool:
        return is_settled(records.get(pair), retry_failed=retry_failed)

    by_id = {item.id: item for item in items}
    pending = [(item.id, m) for item in items for m in workers if not settled((item.id, m))]
    done = {
        (item.id, m): records[(item.id, m)]
        for item in items
        for m in workers
        if settled((item.id, m))
    }
    orchestrators = {
        m: Orchestrator({m: w}, FixedPolicy((m,), strategy), prompts=prompts)
        for m, w in workers.items()
    }
    log.info(
        "router.labels.start", out=str(out), pairs=len(by_id) * len(workers), todo=len(pending)
    )

    async def label(pair: Pair) -> dict[str, Any]:
        item, model = by_id[pair[0]], pair[1]
        return await _label_pair(item, model, orchestrators[model])

    bar = run_progress("labels", console=console, enabled=progress)
    writer = RunFileWriter(out)
    try:
        if fresh:
            writer.write({"type": "header", **config})
        with bar:
            task = bar.add_task(
                _describe(done.values()), total=len(by_id) * len(workers), completed=len(done)
            )
            async for pair, record in bounded_map(pending, label, concurrency):
                writer.write(record)
                done[pair] = record
                bar.update(task, advance=1, description=_describe(done.values()))
    finally:
        writer.close()
    return label_stats(list(done.values()), list(workers))


def _describe(records: Iterable[Mapping[str, Any]]) -> str:
    usable = [r for r in records if r["label"] is not None]
    right = sum(int(r["label"]) for r in usable)
    return f"right {right}/{len(usable)}"


async def _label_pair(item: EvalItem, model: str, orchestrator: Orchestrator) -> dict[str, Any]:
    record: dict[str, Any] = {
        "type": "label",
        "item": item.id,
        "model": model,
        "question": item.query.text,
        "task": item.query.task,
        "status": "failed",
        "label": None,
        "answer": None,
        "margin": None,
        "votes": {},
        "seconds": 0.0,
        "completion_tokens": 0,
        "detail": "",
    }
    started = time.perf_counter()
    try:
        answer = await orchestrator.answer(item.query)
    except Exception as exc:
        record["seconds"] = time.perf_counter() - started
        record["detail"] = f"model call raised {type(exc).__name__}: {exc}"
        log.warning("router.labels.pair_failed", item=item.id, model=model, error=record["detail"])
        return record
    vote = answer.trace.vote
    record.update(
        status=answer.status,
        answer=answer.answer,
        margin=vote.margin if vote else None,
        votes=dict(vote.counts) if vote else {},
        seconds=answer.usage.worker_seconds,
        completion_tokens=answer.usage.completion_tokens,
    )
    if answer.status == "failed":
        record["detail"] = "; ".join(answer.trace.failures)
        log.warning("router.labels.pair_failed", item=item.id, model=model, error=record["detail"])
        return record
    try:
        # Off the event loop: HumanEval scoring runs a subprocess.
        outcome = await asyncio.to_thread(score_item, item, answer.answer)
    except Exception as exc:
        record["status"] = "failed"
        record["detail"] = f"scoring raised {type(exc).__name__}: {exc}"
        log.warning(
            "router.labels.scoring_failed", item=item.id, model=model, error=record["detail"]
        )
        return record
    record["label"] = int(outcome.correct)
    record["detail"] = outcome.detail
    return record
