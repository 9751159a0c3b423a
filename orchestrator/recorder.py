"""``CallRecorder``: every worker call a strategy makes goes through here, so each is
charged to the query's usage and written to its trace the same way."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import structlog

from orchestrator.types import CallKind, GenerationRecord, Trace, Usage
from workers.base import (
    GenerateRequest,
    GenerateResult,
    Prompt,
    ScoreRequest,
    ScoreResult,
    Worker,
)
from workers.errors import WorkerFailure

if TYPE_CHECKING:
    from workers.verifier.steps import StepVerifier

__all__ = ["STEP_VERIFIER", "CallRecorder", "NoStepVerifierError", "UnknownWorkerError"]

STEP_VERIFIER = "step_verifier"
"""The name step-verifier calls are charged to in usage and the trace."""

log = structlog.get_logger(__name__)


class UnknownWorkerError(KeyError):
    def __init__(self, model: str, known: list[str]) -> None:
        super().__init__(f"no worker for model {model!r}; configured: {', '.join(known)}")


class NoStepVerifierError(LookupError):
    def __init__(self) -> None:
        super().__init__(
            "this strategy asks for a step verifier (vote or value 'verifier') but the "
            "orchestrator has none: declare a top-level `step_verifier:` in the config"
        )


class CallRecorder:
    def __init__(
        self,
        workers: Mapping[str, Worker],
        usage: Usage,
        trace: Trace,
        *,
        step_verifier: StepVerifier | None = None,
    ) -> None:
        self._workers = workers
        self.usage = usage
        self.trace = trace
        self.step_verifier = step_verifier

    def require_step_verifier(self) -> StepVerifier:
        if self.step_verifier is None:
            raise NoStepVerifierError()
        return self.step_verifier

    async def score_steps(
        self, prompt: Prompt, paths: Sequence[Sequence[str]]
    ) -> list[list[float]]:
        """Each path's step scores from the step verifier (paths scored concurrently), charged
        to ``STEP_VERIFIER`` as one call."""
        verifier = self.require_step_verifier()
        started = time.perf_counter()
        try:
            scores = await asyncio.gather(*(verifier.score_steps(prompt, p) for p in paths))
        except Exception as exc:
            self._record_failure(STEP_VERIFIER, "score_steps", len(paths), started, exc)
            raise
        seconds = time.perf_counter() - started
        self.usage.add(STEP_VERIFIER, 0, 0, seconds)
        self.trace.generations.append(
            GenerationRecord(
                model=STEP_VERIFIER,
                kind="score_steps",
                n=len(paths),
                prompt_tokens=0,
                completion_tokens=0,
                seconds=seconds,
            )
        )
        return [list(s) for s in scores]

    def worker(self, model: str) -> Worker:
        try:
            return self._workers[model]
        except KeyError:
            raise UnknownWorkerError(model, sorted(self._workers)) from None

    async def generate(self, model: str, request: GenerateRequest) -> GenerateResult:
        worker = self.worker(model)
        started = time.perf_counter()
        try:
            result = await worker.generate(request)
        except Exception as exc:
            self._record_failure(model, "generate", request.params.n, started, exc)
            raise
        u = result.usage
        self.usage.add(model, u.prompt_tokens, u.completion_tokens, u.seconds)
        self.trace.generations.append(
            GenerationRecord(
                model=model,
                kind="generate",
                n=request.params.n,
                prompt_tokens=u.prompt_tokens,
                completion_tokens=u.completion_tokens,
                seconds=u.seconds,
                replica=u.replica,
                attempts=u.attempts,
                failovers=u.failovers,
            )
        )
        log.debug("generated", model=model, n=request.params.n, tokens=u.completion_tokens)
        return result

    async def score(self, model: str, request: ScoreRequest) -> ScoreResult:
        worker = self.worker(model)
        started = time.perf_counter()
        n = len(request.continuations)
        try:
            result = await worker.score(request)
        except Exception as exc:
            self._record_failure(model, "score", n, started, exc)
            raise
        u = result.usage
        self.usage.add(model, u.prompt_tokens, 0, u.seconds)
        self.trace.generations.append(
            GenerationRecord(
                model=model,
                kind="score",
                n=n,
                prompt_tokens=u.prompt_tokens,
                completion_tokens=0,
                seconds=u.seconds,
                replica=u.replica,
                attempts=u.attempts,
                failovers=u.failovers,
            )
        )
        return result

    def _record_failure(
        self, model: str, kind: CallKind, n: int, started: float, exc: Exception
    ) -> None:
        seconds = time.perf_counter() - started
        reason = exc.reason if isinstance(exc, WorkerFailure) else f"{type(exc).__name__}: {exc}"
        self.trace.generations.append(
            GenerationRecord(
                model=model,
                kind=kind,
                n=n,
                prompt_tokens=0,
                completion_tokens=0,
                seconds=seconds,
                error=reason,
            )
        )
        self.trace.failures.append(f"{kind} on {model}: {reason}")
        log.warning("worker_call_failed", model=model, kind=kind, reason=reason)
