"""The guided comparison over several verifiers: the unguided modes once, on a worker
without a verifier; then, one verifier at a time, a worker with it attached runs the
guided modes and re-votes the SC modes' candidates with it, and is closed before the next
is built (one model copy in memory at a time).

Run files: ``greedy.jsonl``, ``sc.jsonl``, and per verifier ``guided_greedy@LABEL.jsonl``,
``guided_sc@LABEL.jsonl``, ``sc_verifier_vote@LABEL.jsonl`` and
``guided_sc_verifier_vote@LABEL.jsonl`` (``verifier_provenance`` labels verifiers), so a
rerun resumes every mode. ``summary.json`` beside them holds the table
(``guided_report``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from rich.console import Console

from orchestrator.aggregation.verifier_vote import PathAggregate
from orchestrator.prompts import PromptConfig
from orchestrator.types import TaskType
from system2.evaluation.datasets import EvalItem
from system2.evaluation.guided import (
    BASELINES,
    GUIDED_MODES,
    GuidedComparison,
    GuidedMode,
    ModeResult,
    mode_from_file,
    run_mode,
)
from system2.evaluation.guided_report import write_summary
from system2.evaluation.revote import revote_with_verifier
from system2.evaluation.verifier_provenance import VerifierSpec
from workers.base import StepVerifier, Worker
from workers.errors import UnsupportedRequest

__all__ = ["OpenWorker", "OpenedWorker", "compare_guided", "token_step_verifier"]

log = structlog.get_logger(__name__)

_DEFAULT_SETTINGS = GuidedComparison()


@dataclass
class OpenedWorker:
    """A worker built for the comparison, what its run files record about it (e.g. its
    config) and the prompts to pose with; ``scorer``: a second load of the same weights with
    the verifier attached, scoring the re-votes' steps where ``worker`` cannot (a vLLM
    engine keeps its verifier in the engine). ``compare_guided`` closes both when done, and
    ``worker`` as soon as only the scorer is needed (an idle vLLM engine on CPU still
    keeps a core busy)."""

    worker: Worker
    described: Mapping[str, Any] = field(default_factory=dict)
    prompts: Mapping[TaskType, PromptConfig] = field(default_factory=dict)
    scorer: Worker | None = None
    _worker_closed: bool = field(default=False, init=False, repr=False)

    async def close_worker(self) -> None:
        """Close ``worker`` (once; ``close`` then skips it)."""
        if not self._worker_closed:
            self._worker_closed = True
            await self.worker.close()

    async def close(self) -> None:
        await self.close_worker()
        if self.scorer is not None:
            await self.scorer.close()


OpenWorker = Callable[[VerifierSpec | None], OpenedWorker]
"""Builds the generator's worker with the given verifier attached (None: without one)."""


def token_step_verifier(worker: Worker) -> StepVerifier | None:
    """The worker's attached token verifier as a step verifier (None on engines that keep
    it out of reach, such as vLLM's engine process)."""
    try:
        return worker.token_step_verifier()
    except UnsupportedRequest:
        return None


async def compare_guided(
    items: Sequence[EvalItem],
    open_worker: OpenWorker,
    out_dir: Path | str,
    *,
    verifiers: Sequence[VerifierSpec],
    settings: GuidedComparison = _DEFAULT_SETTINGS,
    modes: Sequence[GuidedMode] = GUIDED_MODES,
    run_config: Mapping[str, Any] | None = None,
    concurrency: int = 1,
    progress: bool = True,
    console: Console | None = None,
    revote: bool = True,
    step_verifier_of: Callable[[Worker], StepVerifier | None] = token_step_verifier,
    aggregate: PathAggregate = "min",
    allow_mixed: bool = False,
) -> list[ModeResult]:
    """Run ``modes`` (see the module doc) and write ``summary.json``; with ``revote``,
    each verifier's step scores (``step_verifier_of`` its worker; skipped where None)
    re-vote ``sc`` (run in this call, or, beside ``guided_sc``, read from an earlier
    call's run file) and its ``guided_sc``. ``summary.json`` is brought up to date after
    every mode, so a call stopped later keeps the rows (and wall times) of the modes it
    finished. ValueError when guided modes have no verifier."""
    unguided = [m for m in modes if not m.startswith("guided")]
    guided = [m for m in modes if m.startswith("guided")]
    if guided and not verifiers:
        raise ValueError(f"modes {', '.join(guided)} need at least one verifier")
    out = Path(out_dir)

    async def run_on(
        opened: OpenedWorker, mode: GuidedMode, spec: VerifierSpec | None
    ) -> ModeResult:
        return await run_mode(
            mode,
            items,
            opened.worker,
            out,
            settings=settings,
            verifier=spec,
            prompts=opened.prompts,
            run_config={**(run_config or {}), **opened.described},
            concurrency=concurrency,
            progress=progress,
            console=console,
            allow_mixed=allow_mixed,
        )

    results: list[ModeResult] = []

    def finished(result: ModeResult) -> None:
        results.append(result)
        write_summary(out / "summary.json", results + _baselines_from_files(results, items, out))

    if unguided:
        opened = open_worker(None)
        try:
            for mode in unguided:
                finished(await run_on(opened, mode, None))
        finally:
            await opened.close()
    sc = next((r for r in results if r.mode == "sc"), None)
    if sc is None and revote and "guided_sc" in guided and (out / "sc.jsonl").exists():
        sc = mode_from_file("sc", out / "sc.jsonl", items)  # re-voted beside guided SC
        results.append(sc)
    for spec in verifiers:
        if not guided and not (revote and sc is not None):
            break
        opened = open_worker(spec)
        try:
            ours = []
            for mode in guided:
                ours.append(await run_on(opened, mode, spec))
                finished(ours[-1])
            to_revote = [r for r in [sc, *ours] if r and r.base_mode.endswith("sc")]
            if opened.scorer is not None:
                await opened.close_worker()
            scoring = opened.scorer or opened.worker
            step_verifier = step_verifier_of(scoring) if revote and to_revote else None
            if to_revote and revote and step_verifier is None:
                log.warning("verifier_eval.no_revote", verifier=spec.label, reason="no step scores")
            if step_verifier is not None:
                for source in to_revote:
                    finished(
                        await revote_with_verifier(
                            source,
                            items,
                            step_verifier,
                            spec=spec,
                            aggregate=aggregate,
                            prompts=opened.prompts,
                            progress=progress,
                            console=console,
                            allow_mixed=allow_mixed,
                        )
                    )
        finally:
            await opened.close()
    results += _baselines_from_files(results, items, out)
    write_summary(out / "summary.json", results)
    return results


def _baselines_from_files(
    results: Sequence[ModeResult], items: Sequence[EvalItem], out: Path
) -> list[ModeResult]:
    """The unguided baselines of this call's modes that did not run in it but have run
    files from an earlier call (so ``--modes guided_greedy`` is still tested against
    greedy)."""
    have = {r.mode for r in results}
    added: list[ModeResult] = []
    for r in results:
        base = BASELINES.get(r.base_mode)
        path = out / f"{base}.jsonl"
        if base is not None and base not in have and path.exists():
            added.append(mode_from_file(base, path, items))
            have.add(base)
    return added
