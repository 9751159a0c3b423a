"""System-1 vs System-2 on the same items: greedy vs verifier-guided greedy, SC@k vs guided
SC@k, one resumable run file per mode (as ``run_eval`` writes them).

Every mode shares the prompts, token limit, temperature, top-p and seeds, so the modes
differ in guidance alone. ``run_mode`` runs one mode on one worker; a guided mode carries
its verifier's label (``guided_greedy@trunk_head``, run file
``guided_greedy@trunk_head.jsonl``), an unguided one runs without a verifier and keeps its
plain name. A mode's verifier seconds are the guidance processor's time during this call
(the items it ran, not any resumed from an earlier call), as reported by the worker; its
verifier share is that over the call's wall seconds (items in flight together overlap, so
the sum of item seconds would undercount it).

``revote.revote_with_verifier`` adds a row per SC mode: the same candidates voting with
weights from a step verifier.

Each mode is tested against its unguided baseline (``BASELINES``; ``guided_report``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rich.console import Console

from orchestrator.orchestrator import Orchestrator
from orchestrator.prompts import PromptConfig
from orchestrator.strategies.config import (
    GreedyConfig,
    SelfConsistencyConfig,
    StrategyConfig,
    VerifierGuidedConfig,
)
from orchestrator.types import TaskType
from policies.constant import FixedPolicy
from system2.evaluation.datasets import EvalItem
from system2.evaluation.runner import RunSummary, read_records, run_eval, summarize
from system2.evaluation.verifier_provenance import VerifierSpec
from workers.base import Worker

__all__ = [
    "BASELINES",
    "GUIDED_MODES",
    "GuidedComparison",
    "GuidedMode",
    "ModeResult",
    "correct_by_id",
    "mode_from_file",
    "mode_name",
    "run_mode",
]

GuidedMode = Literal["greedy", "guided_greedy", "sc", "guided_sc"]
GUIDED_MODES: tuple[GuidedMode, ...] = ("greedy", "guided_greedy", "sc", "guided_sc")

REVOTE = "+verifier_vote"

BASELINES: Mapping[str, str] = {
    "guided_greedy": "greedy",
    "guided_sc": "sc",
    "sc" + REVOTE: "sc",
    "guided_sc" + REVOTE: "sc",
}
"""The unguided mode each guided or re-voted mode is tested against."""


def mode_name(base: str, verifier: VerifierSpec | None) -> str:
    """A mode's name in tables, summaries and run files: ``base@label`` with a verifier."""
    return base if verifier is None else f"{base}@{verifier.label}"


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
    """One mode's run: ``mode`` is its full name (``base@label`` for a verifier's),
    ``correct`` maps each of this call's items (by id) to whether the mode got it right."""

    mode: str
    path: Path
    summary: RunSummary
    verifier_seconds: float | None
    wall_seconds: float | None = None  # of the items this call ran; None if it ran none
    base: str = ""  # the mode without the verifier's label ("" : same as mode)
    verifier: VerifierSpec | None = None
    correct: Mapping[str, bool] = field(default_factory=dict)

    @property
    def base_mode(self) -> str:
        """The mode without its verifier's label (``guided_sc`` of ``guided_sc@llm2``)."""
        return self.base or self.mode

    @property
    def verifier_share(self) -> float | None:
        """Verifier seconds over this call's wall seconds (None when not measured)."""
        if self.verifier_seconds is None or not self.wall_seconds:
            return None
        return min(1.0, self.verifier_seconds / self.wall_seconds)


def correct_by_id(records: Mapping[str, Mapping[str, Any]], ids: Sequence[str]) -> dict[str, bool]:
    """Whether each of ``ids`` that has a record was answered right."""
    return {i: bool(records[i]["correct"]) for i in ids if i in records}


async def run_mode(
    mode: GuidedMode,
    items: Sequence[EvalItem],
    worker: Worker,
    out_dir: Path | str,
    *,
    settings: GuidedComparison = GuidedComparison(),
    verifier: VerifierSpec | None = None,
    prompts: Mapping[TaskType, PromptConfig] | None = None,
    run_config: Mapping[str, Any] | None = None,
    concurrency: int = 1,
    progress: bool = True,
    console: Console | None = None,
    allow_mixed: bool = False,
) -> ModeResult:
    """Run ``mode`` on ``worker`` into ``out_dir/<mode name>.jsonl`` (resumable); the
    header records ``run_config``, the mode, its strategy, the prompts and ``verifier``."""
    name = worker.model_name
    strategy = settings.strategy(mode)
    orchestrator = Orchestrator({name: worker}, FixedPolicy((name,), strategy), prompts=prompts)
    config = {
        **(run_config or {}),
        "model": name,
        "mode": mode,
        "strategy": strategy.model_dump(mode="json"),
        "prompts": {t: p.model_dump(mode="json") for t, p in (prompts or {}).items()},
    }
    if verifier is not None:
        config["verifier"] = verifier.describe()
    full = mode_name(mode, verifier)
    path = Path(out_dir) / f"{full}.jsonl"
    done_before = len(read_records(path)[1]) if path.exists() else 0
    before, started = _verifier_seconds(worker), time.perf_counter()
    summary = await run_eval(
        items,
        orchestrator.answer,
        path,
        run_config=config,
        concurrency=concurrency,
        progress=progress,
        console=console,
        allow_mixed=allow_mixed,
    )
    after = _verifier_seconds(worker)
    wall: float | None = time.perf_counter() - started
    spent = None if before is None or after is None else after - before
    records = read_records(path)[1]
    if len(records) == done_before:  # every item resumed: nothing was timed
        wall, spent = None, None
    correct = correct_by_id(records, [item.id for item in items])
    return ModeResult(full, path, summary, spent, wall, mode, verifier, correct)


def mode_from_file(mode: str, path: Path, items: Sequence[EvalItem]) -> ModeResult:
    """An unguided mode that ran in an earlier call, read back from its run file (no
    worker, no timings), over ``items``: the baseline of a guided mode run on its own."""
    records = read_records(path)[1]
    ids = [item.id for item in items]
    ours = [records[i] for i in ids if i in records]
    return ModeResult(mode, path, summarize(ours), None, None, correct=correct_by_id(records, ids))


def _verifier_seconds(worker: Worker) -> float | None:
    stats = worker.guidance_stats
    return stats.seconds if stats is not None else None
