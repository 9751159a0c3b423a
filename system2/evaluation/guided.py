"""System-1 vs System-2 on the same items: greedy vs verifier-guided greedy, SC@k vs guided
SC@k, one run file per mode (each resumable, as ``run_eval`` writes them).

All modes share one worker (the verifier attached, used only by the guided modes) and the
same prompts, token limit, temperature, top-p and seeds, so the modes differ in guidance
alone. A mode's verifier seconds are the guidance processor's time during this call (the
items it ran, not any resumed from an earlier call), as reported by the worker; its
verifier share is that over the call's wall seconds (items in flight together overlap, so
the sum of item seconds would undercount it).

``revote_with_verifier`` adds a row per SC mode: the same candidates (read back from the
mode's run file, nothing is sampled again) voting with weights from a step verifier, as
``vote: verifier`` does; its seconds are the mode's plus the verifier's.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rich.console import Console
from rich.table import Table

from orchestrator.aggregation.verifier_vote import (
    PathAggregate,
    score_paths,
    verifier_weighted_vote,
)
from orchestrator.orchestrator import Orchestrator
from orchestrator.prompts import PromptConfig, build_prompt
from orchestrator.strategies.config import (
    GreedyConfig,
    SelfConsistencyConfig,
    StrategyConfig,
    VerifierGuidedConfig,
)
from orchestrator.strategies.stepwise import split_steps
from orchestrator.types import TaskType
from policies.constant import FixedPolicy
from system2.evaluation.datasets import EvalItem, score_item
from system2.evaluation.runner import RunSummary, read_records, run_eval, summarize
from workers.base import StepVerifier, Worker

__all__ = [
    "GUIDED_MODES",
    "GuidedComparison",
    "GuidedMode",
    "ModeResult",
    "compare_guided",
    "print_guided",
    "revote_with_verifier",
]

GuidedMode = Literal["greedy", "guided_greedy", "sc", "guided_sc"]
GUIDED_MODES: tuple[GuidedMode, ...] = ("greedy", "guided_greedy", "sc", "guided_sc")


@dataclass(frozen=True)
class GuidedComparison:
    """The shared settings: guidance (beta, alpha, top_k) and sampling of the SC modes."""

    beta: float = 0.25
    alpha: float = 0.1
    top_k: int = 10
    k: int = 5
    temperature: float = 0.7
    top_p: float = 0.95
    max_tokens: int = 512
    seed: int = 0

    def strategy(self, mode: GuidedMode) -> StrategyConfig:
        """The strategy config that runs ``mode``."""
        if mode == "greedy":
            return GreedyConfig(max_tokens=self.max_tokens)
        if mode == "sc":
            return SelfConsistencyConfig(
                n=self.k,
                temperature=self.temperature,
                top_p=self.top_p,
                max_tokens=self.max_tokens,
                seed=self.seed,
            )
        if mode == "guided_greedy":
            return VerifierGuidedConfig(
                beta=self.beta, alpha=self.alpha, top_k=self.top_k, max_tokens=self.max_tokens
            )
        if mode == "guided_sc":
            return VerifierGuidedConfig(
                beta=self.beta,
                alpha=self.alpha,
                top_k=self.top_k,
                n=self.k,
                temperature=self.temperature,
                top_p=self.top_p,
                max_tokens=self.max_tokens,
                seed=self.seed,
            )
        raise ValueError(f"unknown mode {mode!r}; known: {', '.join(GUIDED_MODES)}")


@dataclass(frozen=True)
class ModeResult:
    mode: str
    path: Path
    summary: RunSummary
    verifier_seconds: float | None
    wall_seconds: float | None = None  # of the items this call ran; None if it ran none

    @property
    def verifier_share(self) -> float | None:
        """Verifier seconds over this call's wall seconds (None when not measured)."""
        if self.verifier_seconds is None or not self.wall_seconds:
            return None
        return min(1.0, self.verifier_seconds / self.wall_seconds)


async def compare_guided(
    items: Sequence[EvalItem],
    worker: Worker,
    out_dir: Path | str,
    *,
    settings: GuidedComparison = GuidedComparison(),
    modes: Sequence[GuidedMode] = GUIDED_MODES,
    prompts: Mapping[TaskType, PromptConfig] | None = None,
    run_config: Mapping[str, Any] | None = None,
    concurrency: int = 1,
    progress: bool = True,
    console: Console | None = None,
    step_verifier: StepVerifier | None = None,
    aggregate: PathAggregate = "min",
    allow_mixed: bool = False,
) -> list[ModeResult]:
    """Run every mode into ``out_dir/<mode>.jsonl`` and, given a ``step_verifier``, re-vote
    each SC mode with it (``revote_with_verifier``); the worker is left open."""
    out = Path(out_dir)
    name = worker.model_name
    results = []
    for mode in modes:
        strategy = settings.strategy(mode)
        orchestrator = Orchestrator({name: worker}, FixedPolicy((name,), strategy), prompts=prompts)
        config = {
            **(run_config or {}),
            "model": name,
            "mode": mode,
            "strategy": strategy.model_dump(mode="json"),
            "prompts": {t: p.model_dump(mode="json") for t, p in (prompts or {}).items()},
        }
        before, started = _verifier_seconds(worker), time.perf_counter()
        summary = await run_eval(
            items,
            orchestrator.answer,
            out / f"{mode}.jsonl",
            run_config=config,
            concurrency=concurrency,
            progress=progress,
            console=console,
            allow_mixed=allow_mixed,
        )
        after, wall = _verifier_seconds(worker), time.perf_counter() - started
        spent = None if before is None or after is None else after - before
        results.append(ModeResult(mode, out / f"{mode}.jsonl", summary, spent, wall))
    if step_verifier is not None:
        for source in [r for r in results if r.mode in ("sc", "guided_sc")]:
            results.append(
                await revote_with_verifier(
                    source, items, step_verifier, aggregate=aggregate, prompts=prompts
                )
            )
    _write_summary(out / "summary.json", results)
    return results


async def revote_with_verifier(
    source: ModeResult,
    items: Sequence[EvalItem],
    verifier: StepVerifier,
    *,
    aggregate: PathAggregate = "min",
    prompts: Mapping[TaskType, PromptConfig] | None = None,
) -> ModeResult:
    """``source``'s candidates re-voted with ``verifier``'s path scores, written to
    ``<source>_verifier_vote.jsonl`` (the source's records with the new prediction, and
    the verifier's seconds added to each item's)."""
    header, records = read_records(source.path)
    by_id = {item.id: item for item in items}
    revoted, spent = [], 0.0
    for item_id, record in records.items():
        item = by_id.get(item_id)
        candidates = (record.get("trace") or {}).get("candidates") or []
        if item is None or record["status"] == "failed" or not candidates:
            revoted.append(record)
            continue
        prompt = build_prompt(item.query, (prompts or {}).get(item.query.task))
        started = time.perf_counter()
        steps = [split_steps(c["text"]) for c in candidates]
        scores = await score_paths(verifier, prompt, steps)
        seconds = time.perf_counter() - started
        spent += seconds
        answers = [c["answer"] for c in candidates]
        vote = verifier_weighted_vote(answers, scores, aggregate=aggregate, scale=verifier.scale)
        outcome = score_item(item, vote.winner)
        revoted.append(
            {
                **record,
                "predicted": vote.winner,
                "correct": outcome.correct,
                "detail": outcome.detail,
                "seconds": record["seconds"] + seconds,
                "verifier_vote": {"counts": vote.counts, "step_scores": scores},
            }
        )
    path = source.path.with_name(f"{source.path.stem}_verifier_vote.jsonl")
    revote = {"source": str(source.path), "aggregate": aggregate, "scale": verifier.scale}
    lines = [{**(header or {}), "revote": revote}, *revoted]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in lines))
    verifier_seconds = None if source.verifier_seconds is None else source.verifier_seconds + spent
    wall_seconds = None if source.wall_seconds is None else source.wall_seconds + spent
    return ModeResult(
        f"{source.mode}+verifier_vote", path, summarize(revoted), verifier_seconds, wall_seconds
    )


def _write_summary(path: Path, results: Sequence[ModeResult]) -> None:
    path.write_text(json.dumps(_summary_json(results), indent=2) + "\n")


def _verifier_seconds(worker: Worker) -> float | None:
    stats = worker.guidance_stats
    return stats.seconds if stats is not None else None


def _summary_json(results: Sequence[ModeResult]) -> list[dict[str, Any]]:
    return [
        {
            "mode": r.mode,
            "file": str(r.path),
            "items": r.summary.n,
            "accuracy": r.summary.accuracy,
            "completion_tokens_mean": r.summary.completion_tokens_mean,
            "seconds_total": r.summary.seconds_total,
            "wall_seconds": r.wall_seconds,
            "verifier_seconds": r.verifier_seconds,
            "verifier_share": r.verifier_share,
            "failures": r.summary.failures,
        }
        for r in results
    ]


def print_guided(results: Sequence[ModeResult], *, console: Console | None = None) -> None:
    """The comparison as one table, a row per mode."""
    table = Table(title="System-1 vs System-2 (same items)")
    longest = max((len(r.mode) for r in results), default=4)
    table.add_column("mode", style="bold", no_wrap=True, min_width=longest)
    for column in ("items", "accuracy", "tokens", "item s", "wall s", "verifier share"):
        table.add_column(column, justify="right")
    for r in results:
        share = r.verifier_share
        table.add_row(
            r.mode,
            str(r.summary.n),
            f"{r.summary.accuracy:.1%}",
            f"{r.summary.completion_tokens_mean:.1f}",
            f"{r.summary.seconds_total:.1f}",
            "-" if r.wall_seconds is None else f"{r.wall_seconds:.1f}",
            "-" if share is None else f"{share:.0%}",
        )
    (console or Console()).print(table)
