"""The triplet-synthesis run: every item explored into a resumable run file.

Run file (``system2.runfile``, written through ``system2.resumable_run``): a header with
the settings, then one ``{"type": "item", ...}`` record per item: ``id``, ``status``
(``ok``, ``no_reference``, ``failed``), ``prompt`` (the chat messages), ``references``
(each: ``source``, ``text``, ``token_ids`` as scored, and the explored ``positions`` with
every alternative's accuracy), ``triplets`` (each: ``reference`` index, ``position``
within the reference's tokens, ``gold_id``, ``negative_id``, both accuracies),
``rollouts``, ``completion_tokens`` and ``seconds``. A rerun skips recorded items (failed
ones too, unless ``retry_failed``) and refuses different settings (and, unless
``allow_mixed``, a file written by other code: ``system2.runfile``).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import structlog
from rich.console import Console

from orchestrator.prompts import PromptConfig, build_prompt
from orchestrator.types import TaskType
from system2.evaluation.datasets import EvalItem
from system2.resumable_run import ResumableRun
from workers.base import ChatMessage, Prompt, Worker

from .exploration import explore_reference
from .labelling import triplets
from .rollouts import SamplingTally, references
from .settings import ExplorationSettings

__all__ = [
    "SynthesisStats",
    "prompt_from_json",
    "read_triplets",
    "synthesize_triplets",
    "triplet_stats",
]

log = structlog.get_logger(__name__)

_DEFAULT_SETTINGS = ExplorationSettings()


@dataclass(frozen=True)
class SynthesisStats:
    """Totals over the recorded items of a run file."""

    items: int
    with_reference: int
    failed: int
    positions: int
    triplets: int
    rollouts: int
    completion_tokens: int
    seconds: float


def _describe(records: Collection[Mapping[str, Any]]) -> str:
    found = sum(1 for r in records if r["references"])
    count = sum(len(r["triplets"]) for r in records)
    return f"{count} triplets, references for {found}/{len(records)}"


_TRIPLETS_RUN: ResumableRun[EvalItem, str] = ResumableRun(
    record_type="item",
    key=lambda item: item.id,
    record_key=lambda r: str(r["id"]),
    label="triplets",
    describe=_describe,
    log_event="verifier.synthesis",
)


def read_triplets(path: Path | str) -> tuple[dict[str, Any] | None, dict[str, dict[str, Any]]]:
    """The header and the item records (last per id) of a triplets file."""
    return _TRIPLETS_RUN.read(path)


def triplet_stats(records: Iterable[Mapping[str, Any]]) -> SynthesisStats:
    """Totals over item records (as ``synthesize_triplets`` writes them)."""
    rows = list(records)
    return SynthesisStats(
        items=len(rows),
        with_reference=sum(1 for r in rows if r["references"]),
        failed=sum(1 for r in rows if r["status"] == "failed"),
        positions=sum(len(ref["positions"]) for r in rows for ref in r["references"]),
        triplets=sum(len(r["triplets"]) for r in rows),
        rollouts=sum(int(r["rollouts"]) for r in rows),
        completion_tokens=sum(int(r["completion_tokens"]) for r in rows),
        seconds=sum(float(r["seconds"]) for r in rows),
    )


async def synthesize_triplets(
    items: Sequence[EvalItem],
    worker: Worker,
    out: Path | str,
    *,
    settings: ExplorationSettings = _DEFAULT_SETTINGS,
    prompts: Mapping[TaskType, PromptConfig] | None = None,
    run_config: Mapping[str, Any] | None = None,
    retry_failed: bool = False,
    allow_mixed: bool = False,
    concurrency: int = 1,
    progress: bool = True,
    console: Console | None = None,
) -> SynthesisStats:
    """Explore every item not yet in ``out`` (resumable); returns totals over all items.

    The header holds the model name, the settings, the prompts and ``run_config`` (e.g.
    the data set, limit, seed and worker config). ``concurrency`` items run at once; one
    item's calls always run concurrently, so a batching worker decodes its rollouts together.
    """
    clash = sorted({"type", "kind", "model", "settings", "prompts"} & set(run_config or {}))
    if clash:
        raise ValueError(f"run_config must not set {clash}: the synthesizer writes them")
    config = {
        "kind": "verifier_triplets",
        "model": worker.model_name,
        "settings": asdict(settings),
        "prompts": {t: p.model_dump(mode="json") for t, p in (prompts or {}).items()},
        **(run_config or {}),
    }

    async def explore(item: EvalItem) -> dict[str, Any]:
        prompt = build_prompt(item.query, (prompts or {}).get(item.query.task))
        return await _explore_item(item, prompt, worker, settings)

    records = await _TRIPLETS_RUN.run(
        items,
        explore,
        out,
        config=config,
        retry_failed=retry_failed,
        allow_mixed=allow_mixed,
        concurrency=concurrency,
        progress=progress,
        console=console,
    )
    stats = triplet_stats(records)
    log.info("verifier.synthesis.done", out=str(out), triplets=stats.triplets)
    return stats


async def _explore_item(
    item: EvalItem, prompt: Prompt, worker: Worker, settings: ExplorationSettings
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "type": "item",
        "id": item.id,
        "status": "failed",
        "detail": "",
        "prompt": _jsonable_prompt(prompt),
        "references": [],
        "triplets": [],
        "rollouts": 0,
        "completion_tokens": 0,
        "seconds": 0.0,
    }
    started = time.perf_counter()
    tally = SamplingTally()
    try:
        found = await references(item, prompt, worker, settings, tally)
        for index, (source, text) in enumerate(found):
            explored = await explore_reference(item, prompt, worker, settings, text, tally)
            record["references"].append({"source": source, "text": text, **explored})
            record["triplets"] += [
                {"reference": index, **t} for t in triplets(explored["positions"])
            ]
    except Exception as exc:
        record["detail"] = f"{type(exc).__name__}: {exc}"
        log.warning("verifier.synthesis.item_failed", id=item.id, error=record["detail"])
    else:
        record["status"] = "ok" if record["references"] else "no_reference"
    record.update(
        rollouts=tally.rollouts,
        completion_tokens=tally.tokens,
        seconds=time.perf_counter() - started,
    )
    return record


def _jsonable_prompt(prompt: Prompt) -> str | list[dict[str, str]]:
    return prompt if isinstance(prompt, str) else [m.model_dump() for m in prompt]


def prompt_from_json(data: Any) -> Prompt:
    """A record's ``prompt`` (text, or chat messages as dicts) back as a ``Prompt``."""
    if isinstance(data, str):
        return data
    return tuple(ChatMessage.model_validate(m) for m in data)
