"""Re-voting an SC mode's candidates with a step verifier, as ``vote: verifier`` does: the
candidates are read back from the mode's run file (nothing is sampled again), each path is
scored step by step and the answers vote with weights from those scores.

The re-vote is a resumable run of its own (``<source base>_verifier_vote@<label>.jsonl``,
one record per item, with a progress bar): scoring every candidate of 150 items takes
minutes to hours on a CPU, and a stopped call keeps the items it scored. Each record is
the source's with the new prediction and the verifier's seconds added (also kept apart,
as ``verifier_vote.seconds``, so resumed items still count towards the verifier's time).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console

from orchestrator.aggregation.verifier_vote import (
    PathAggregate,
    score_paths,
    verifier_weighted_vote,
)
from orchestrator.prompts import PromptConfig, build_prompt
from orchestrator.strategies.stepwise import split_steps
from orchestrator.types import TaskType
from system2.evaluation.datasets import EvalItem, score_item
from system2.evaluation.guided import REVOTE, ModeResult, correct_by_id, mode_name
from system2.evaluation.runner import failed_record, read_records, run_eval
from system2.evaluation.verifier_provenance import VerifierSpec
from system2.runfile import CODE_KEY
from workers.base import StepVerifier

__all__ = ["revote_with_verifier"]


async def revote_with_verifier(
    source: ModeResult,
    items: Sequence[EvalItem],
    verifier: StepVerifier,
    *,
    spec: VerifierSpec | None = None,
    aggregate: PathAggregate = "min",
    prompts: Mapping[TaskType, PromptConfig] | None = None,
    progress: bool = True,
    console: Console | None = None,
    allow_mixed: bool = False,
) -> ModeResult:
    """``source``'s candidates on ``items`` re-voted with ``verifier``'s path scores, into
    ``<source base>_verifier_vote@<label>.jsonl`` (``spec`` gives the label; without it
    ``<source>_verifier_vote.jsonl``), resuming the items an earlier call scored. An item
    the source failed, or answered without candidates, keeps the source's record."""
    source_header, records = read_records(source.path)
    revote: dict[str, Any] = {
        "source": str(source.path),
        "aggregate": aggregate,
        "scale": verifier.scale,
    }
    if spec is not None:
        revote["verifier"] = spec.describe()
    config = {
        **{k: v for k, v in (source_header or {}).items() if k not in ("type", CODE_KEY)},
        "revote": revote,
    }

    async def revoted(item: EvalItem) -> dict[str, Any]:
        record = records.get(item.id)
        if record is None:
            return failed_record(item, f"no record in {source.path}")
        candidates = (record.get("trace") or {}).get("candidates") or []
        if record["status"] == "failed" or not candidates:
            return record
        prompt = build_prompt(item.query, (prompts or {}).get(item.query.task))
        started = time.perf_counter()
        try:
            scores = await score_paths(
                verifier, prompt, [split_steps(c["text"]) for c in candidates]
            )
        except Exception as exc:  # recorded, not raised: the other items still re-vote
            seconds = time.perf_counter() - started
            return failed_record(item, f"verifier failed: {exc!r}", seconds=seconds)
        seconds = time.perf_counter() - started
        answers = [c["answer"] for c in candidates]
        vote = verifier_weighted_vote(answers, scores, aggregate=aggregate, scale=verifier.scale)
        outcome = score_item(item, vote.winner)
        return {
            **record,
            "predicted": vote.winner,
            "correct": outcome.correct,
            "detail": outcome.detail,
            "seconds": record["seconds"] + seconds,
            "verifier_vote": {"counts": vote.counts, "step_scores": scores, "seconds": seconds},
        }

    name = mode_name(source.base_mode + REVOTE, spec)
    path = source.path.with_name(f"{name.replace('+', '_')}.jsonl")
    summary = await run_eval(
        items,
        None,
        path,
        run_config=config,
        record_fn=revoted,
        progress=progress,
        console=console,
        allow_mixed=allow_mixed,
    )
    ours = read_records(path)[1]
    spent = sum(float((r.get("verifier_vote") or {}).get("seconds", 0.0)) for r in ours.values())
    verifier_seconds = (source.verifier_seconds or 0.0) + spent
    wall_seconds = None if source.wall_seconds is None else source.wall_seconds + spent
    correct = correct_by_id(ours, [item.id for item in items])
    return ModeResult(
        name, path, summary, verifier_seconds, wall_seconds, source.base_mode + REVOTE, spec,
        correct,
    )  # fmt: skip
