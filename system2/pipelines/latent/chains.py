"""Step 1 of the latent pipeline: chains of thought for training items, each checked
against the gold answer.

Per item, by ``source``:

* ``generator``: the item is answered through the normal seam (an ``answer_fn``, e.g. an
  ``Orchestrator`` with a greedy or self-consistency plan, so prompts and answer extraction
  are those of evaluation); the answer's text is kept when ``score_item`` judges its
  extracted answer right.
* ``gold``: the task's own worked solution (reasoning-gym's ``answer_cot``; GSM-Symbolic
  has one for every item), with its closing ``#### N`` line rewritten as the final line the
  evaluation prompt asks for (``The answer is N.``), kept when judged right the same way.
* ``generator+gold``: the generator first; the gold rationale where the generator is wrong.

Every record says which source its chain came from (``source``: the strategy's kind, or
``gold``; None when dropped). Records are written through ``system2.resumable_run`` (one
``{"type": "chain", ...}`` line per item, resumable, refusing a file of another config),
keyed by item id; the header leaves out the item count, so a larger ``--limit`` extends a
file. Training items must come from seeds below ``EVAL_SEEDS_FROM``: evaluation uses the
seeds from there on.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import structlog
from rich.console import Console

from orchestrator.types import Answer, Query
from system2.evaluation.datasets import EvalItem, score_item
from system2.pipelines.verifier_triplets.rollouts import gold_rationale, judge
from system2.resumable_run import ResumableRun, is_settled

__all__ = [
    "EVAL_SEEDS_FROM",
    "ChainSource",
    "chains_digest",
    "check_training_seed",
    "collect_chains",
    "gold_chain",
    "kept_chains",
    "pending_items",
    "read_chains",
]

log = structlog.get_logger(__name__)

ChainSource = Literal["generator", "gold", "generator+gold"]
AnswerFn = Callable[[Query], Awaitable[Answer]]

EVAL_SEEDS_FROM = 1000
"""Evaluation items come from seeds >= this; training items from seeds below it."""

_HASH_LINE = re.compile(r"\n?\s*####\s*(.+?)\s*$")


def check_training_seed(seed: int, limit: int) -> None:
    """Refuse training items that could be evaluation items (seeds >= ``EVAL_SEEDS_FROM``)."""
    if not 0 <= seed < EVAL_SEEDS_FROM:
        raise ValueError(
            f"training seed {seed} lies outside 0..{EVAL_SEEDS_FROM - 1}: seeds from "
            f"{EVAL_SEEDS_FROM} on are kept for evaluation"
        )
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")


def gold_chain(item: EvalItem) -> str | None:
    """The task's gold rationale ending with ``The answer is N.`` (None: it has none)."""
    text = gold_rationale(item)
    if text is None:
        return None
    text = text.strip()
    final = _HASH_LINE.search(text)
    if final is not None:
        text = f"{text[: final.start()].rstrip()}\nThe answer is {final.group(1)}."
    return text


def _describe(records: Collection[Mapping[str, Any]]) -> str:
    kept = sum(1 for r in records if r["status"] == "kept")
    return f"kept {kept}/{len(records)}"


_CHAINS_RUN: ResumableRun[EvalItem, str] = ResumableRun(
    record_type="chain",
    key=lambda item: item.id,
    record_key=lambda r: str(r["id"]),
    label="chains",
    describe=_describe,
    log_event="latent.chains",
)


def read_chains(path: Path | str) -> tuple[dict[str, Any] | None, dict[str, dict[str, Any]]]:
    """The header and the chain records (last per item id) of a chains file."""
    return _CHAINS_RUN.read(path)


def kept_chains(path: Path | str) -> list[dict[str, Any]]:
    """The kept chains of a chains file, in item-id order (the training set)."""
    _, records = read_chains(path)
    return [records[k] for k in sorted(records) if records[k]["status"] == "kept"]


def chains_digest(chains: Sequence[Mapping[str, Any]]) -> str:
    """A short fingerprint of kept chains (ids and texts), recorded by the steps trained
    on them so a changed chains file is noticed."""
    digest = hashlib.sha256()
    for chain in chains:
        digest.update(json.dumps([chain["id"], chain["text"]]).encode())
    return digest.hexdigest()[:16]


def pending_items(
    items: Sequence[EvalItem], out: Path | str, *, retry_failed: bool = False
) -> list[EvalItem]:
    """The items a run into ``out`` still has to do (so a finished step loads no model)."""
    if not Path(out).exists():
        return list(items)
    _, records = read_chains(out)
    return [i for i in items if not is_settled(records.get(i.id), retry_failed=retry_failed)]


async def _chain_record(
    item: EvalItem, source: ChainSource, answer_fn: AnswerFn | None
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "type": "chain",
        "id": item.id,
        "question": item.query.text,
        "gold": item.gold,
        "status": "dropped",
        "source": None,
        "text": None,
        "predicted": None,
        "completion_tokens": 0,
    }
    if source != "gold":
        assert answer_fn is not None  # collect_chains checks it
        try:
            answer = await answer_fn(item.query)
        except Exception as exc:
            log.warning("latent.chains.failed", id=item.id, error=str(exc))
            return record | {"status": "failed", "detail": f"{type(exc).__name__}: {exc}"}
        record["predicted"] = answer.answer
        record["completion_tokens"] = answer.usage.completion_tokens
        right = await asyncio.to_thread(score_item, item, answer.answer)
        if right.correct and answer.text.strip():
            strategy = str(answer.trace.plan.get("strategy", {}).get("kind", "generator"))
            return record | {"status": "kept", "source": strategy, "text": answer.text.strip()}
    if source != "generator":
        text = gold_chain(item)
        if text is not None and await asyncio.to_thread(judge, item, text):
            return record | {"status": "kept", "source": "gold", "text": text}
    return record


async def collect_chains(
    items: Sequence[EvalItem],
    out: Path | str,
    *,
    source: ChainSource,
    answer_fn: AnswerFn | None = None,
    run_config: Mapping[str, Any] | None = None,
    retry_failed: bool = False,
    allow_mixed: bool = False,
    concurrency: int = 1,
    progress: bool = True,
    console: Console | None = None,
) -> list[dict[str, Any]]:
    """Collect a chain for every item into ``out`` (resumable); returns every item's record.

    ``answer_fn`` answers an item's query (needed unless ``source`` is ``gold``);
    ``run_config`` (e.g. the data set, seed and generator) goes into the header with
    ``source``.
    """
    if source not in ("generator", "gold", "generator+gold"):
        raise ValueError(f"unknown source {source!r}: generator, gold or generator+gold")
    if source != "gold" and answer_fn is None:
        raise ValueError(f"source {source!r} needs an answer_fn (the generator)")
    config = {"kind": "latent_chains", "source": source, **(run_config or {})}

    async def work(item: EvalItem) -> dict[str, Any]:
        return await _chain_record(item, source, answer_fn)

    return await _CHAINS_RUN.run(
        items,
        work,
        out,
        config=config,
        retry_failed=retry_failed,
        allow_mixed=allow_mixed,
        concurrency=concurrency,
        progress=progress,
        console=console,
    )
