"""Collect SelectLLM training labels: for each (item, model), is the model's majority
answer over ``samples`` samples right? Each record also keeps the samples themselves, in
order, and (with ``greedy``) the model's greedy answer, so one collection labels every arm
of the model: greedy, and SC@k for any k <= ``samples`` (``policies.selectllm.arms``).

Every pair runs through the normal seam: an ``Orchestrator`` with a ``FixedPolicy`` on
that one model and ``SelfConsistencyConfig(n=samples)``, so prompts, answer extraction and
voting are exactly those of evaluation; the answer is judged by ``score_item``.

File format (a run file, written through ``system2.resumable_run`` like the eval runner's):
line 1 is ``{"type": "header", **config}`` (``format`` 2; files without it are format 1,
whose records lack ``samples``, ``judged`` and ``greedy``: still fine for the per-model
router, refused by name for arms); each finished pair appends one
``{"type": "label", ...}`` line, flushed and fsynced. A rerun with the same file skips pairs
already recorded (and, unless ``retry_failed``, pairs recorded as failed), refuses a
different config (and, unless ``allow_mixed``, a file written by other code), and ignores
a torn final line; for a pair recorded more than once the last line wins.

The label record format is documented in ``policies.selectllm.labels``, beside the
statistics the router computes from it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import structlog
from rich.console import Console

from orchestrator.orchestrator import Orchestrator
from orchestrator.prompts import PromptConfig
from orchestrator.strategies.config import GreedyConfig, SelfConsistencyConfig
from orchestrator.types import Answer, TaskType
from policies.constant import FixedPolicy
from policies.selectllm.labels import LabelStats, Pair, label_stats
from system2.evaluation.datasets import EvalItem, score_item
from system2.resumable_run import ResumableRun
from workers.base import Worker

__all__ = ["LABELS_FORMAT", "collect_labels", "read_labels"]

log = structlog.get_logger(__name__)

LABELS_FORMAT = 2
"""Format 2 records keep the ordered samples, every answer's judgement and the greedy answer."""


def _describe(records: Collection[Mapping[str, Any]]) -> str:
    usable = [r for r in records if r["label"] is not None]
    right = sum(int(r["label"]) for r in usable)
    return f"right {right}/{len(usable)}"


_LABELS_RUN: ResumableRun[Pair, Pair] = ResumableRun(
    record_type="label",
    key=lambda pair: pair,
    record_key=lambda r: (str(r["item"]), str(r["model"])),
    label="labels",
    describe=_describe,
    log_event="router.labels",
)


def read_labels(path: Path | str) -> tuple[dict[str, Any] | None, dict[Pair, dict[str, Any]]]:
    """The header and the label records (last per pair) of a labels file."""
    return _LABELS_RUN.read(path)


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
    greedy: bool = False,
    prompts: Mapping[TaskType, PromptConfig] | None = None,
    run_config: Mapping[str, Any] | None = None,
    retry_failed: bool = False,
    allow_mixed: bool = False,
    concurrency: int = 1,
    pool: Sequence[str] | None = None,
    progress: bool = True,
    console: Console | None = None,
) -> dict[str, LabelStats]:
    """Label every (item, model) pair into ``out`` (resumable); returns per-model stats.

    The header holds the models (in ``workers`` order, the router's pool order), the
    sampling settings, the prompts and ``run_config`` (e.g. data sets, limit, worker configs). With
    ``concurrency`` > 1 that many pairs run at once, so recorded seconds include queueing.
    With ``greedy`` each pair also gets a greedy answer (same ``max_tokens``), run first.

    ``pool`` (default: the ``workers``) is the header's model list when only some of the
    pool's models run now: a small machine collects one model at a time into one file,
    each engine alone in memory and on the cores; the returned stats cover the pool.
    """
    if not workers:
        raise ValueError("no models to label")
    models = list(workers) if pool is None else list(pool)
    strangers = [m for m in workers if m not in models]
    if strangers:
        raise ValueError(f"models {strangers} are not in the pool {models}")
    clash = sorted({"type", "kind", "models", "strategy", "prompts"} & set(run_config or {}))
    if clash:
        raise ValueError(f"run_config must not set {clash}: the collector writes them")
    strategy = SelfConsistencyConfig(
        n=samples, temperature=temperature, top_p=top_p, max_tokens=max_tokens, seed=seed
    )
    greedy_strategy = GreedyConfig(max_tokens=max_tokens) if greedy else None
    config = {
        "kind": "selectllm_labels",
        "format": LABELS_FORMAT,
        "models": models,
        "strategy": strategy.model_dump(mode="json"),
        "greedy": None if greedy_strategy is None else greedy_strategy.model_dump(mode="json"),
        "prompts": {t: p.model_dump(mode="json") for t, p in (prompts or {}).items()},
        **(run_config or {}),
    }
    by_id = {item.id: item for item in items}
    orchestrators = {
        m: Orchestrator({m: w}, FixedPolicy((m,), strategy), prompts=prompts)
        for m, w in workers.items()
    }

    greedy_orchestrators = (
        {}
        if greedy_strategy is None
        else {
            m: Orchestrator({m: w}, FixedPolicy((m,), greedy_strategy), prompts=prompts)
            for m, w in workers.items()
        }
    )

    async def label(pair: Pair) -> dict[str, Any]:
        item, model = by_id[pair[0]], pair[1]
        return await _label_pair(item, model, orchestrators[model], greedy_orchestrators.get(model))

    records = await _LABELS_RUN.run(
        [(item.id, m) for item in items for m in workers],
        label,
        out,
        config=config,
        retry_failed=retry_failed,
        allow_mixed=allow_mixed,
        concurrency=concurrency,
        progress=progress,
        console=console,
    )
    if pool is not None:
        _, recorded = read_labels(out)
        wanted = {item.id for item in items}
        records = [r for (item, _m), r in recorded.items() if item in wanted]
    return label_stats(records, models)


async def _label_pair(
    item: EvalItem,
    model: str,
    orchestrator: Orchestrator,
    greedy_orchestrator: Orchestrator | None,
) -> dict[str, Any]:
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
        "samples": [],
        "judged": {},
        "greedy": None,
        "detail": "",
    }
    if greedy_orchestrator is not None:
        greedy = await _run(item, model, greedy_orchestrator, record)
        if greedy is None:
            record["detail"] = f"greedy: {record['detail']}"
            return record
        record["greedy"] = {
            "status": greedy.status,
            "answer": greedy.answer,
            "tokens": greedy.usage.completion_tokens,
            "seconds": greedy.usage.worker_seconds,
        }
    answer = await _run(item, model, orchestrator, record)
    if answer is None:
        return record
    vote = answer.trace.vote
    record.update(
        status=answer.status,
        answer=answer.answer,
        margin=vote.margin if vote else None,
        votes=dict(vote.counts) if vote else {},
        seconds=answer.usage.worker_seconds,
        completion_tokens=answer.usage.completion_tokens,
        samples=[
            {"answer": c.answer, "tokens": c.completion_tokens, "logprob": c.total_logprob}
            for c in answer.trace.candidates
        ],
    )
    seen = [s["answer"] for s in record["samples"]]
    if record["greedy"] is not None:
        seen.append(record["greedy"]["answer"])
    try:
        # Off the event loop: HumanEval scoring runs a subprocess.
        judged = {
            a: (await asyncio.to_thread(score_item, item, a))
            for a in dict.fromkeys([*seen, answer.answer])
            if a is not None
        }
    except Exception as exc:
        record["status"] = "failed"
        record["detail"] = f"scoring raised {type(exc).__name__}: {exc}"
        log.warning(
            "router.labels.scoring_failed", item=item.id, model=model, error=record["detail"]
        )
        return record
    record["judged"] = {a: outcome.correct for a, outcome in judged.items()}
    if answer.answer is None:
        record["label"], record["detail"] = 0, "no answer extracted"
    else:
        record["label"] = int(judged[answer.answer].correct)
        record["detail"] = judged[answer.answer].detail
    return record


async def _run(
    item: EvalItem, model: str, orchestrator: Orchestrator, record: dict[str, Any]
) -> Answer | None:
    """The orchestrator's answer, or None with ``record`` marked failed (and why)."""
    started = time.perf_counter()
    try:
        answer = await orchestrator.answer(item.query)
    except Exception as exc:
        record["seconds"] = time.perf_counter() - started
        record["detail"] = f"model call raised {type(exc).__name__}: {exc}"
        log.warning("router.labels.pair_failed", item=item.id, model=model, error=record["detail"])
        return None
    if answer.status == "failed":
        record["detail"] = "; ".join(answer.trace.failures)
        log.warning("router.labels.pair_failed", item=item.id, model=model, error=record["detail"])
        return None
    return answer
