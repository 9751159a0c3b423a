"""``CallRecorder``: every worker call a strategy makes goes through here, so each is
charged to the query's usage and written to its trace the same way."""

from __future__ import annotations

import time
from collections.abc import Mapping

import structlog

from orchestrator.types import GenerationRecord, Trace, Usage
from workers.base import GenerateRequest, GenerateResult, ScoreRequest, ScoreResult, Worker
from workers.errors import WorkerFailure

__all__ = ["CallRecorder", "UnknownWorkerError"]

log = structlog.get_logger(__name__)


class UnknownWorkerError(KeyError):
    def __init__(self, model: str, known: list[str]) -> None:
        super().__init__(f"no worker for model {model!r}; configured: {', '.join(known)}")


class CallRecorder:
    def __init__(self, workers: Mapping[str, Worker], usage: Usage, trace: Trace) -> None:
        self._workers = workers
        self.usage = usage
        self.trace = trace

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
        self, model: str, kind: str, n: int, started: float, exc: Exception
    ) -> None:
        seconds = time.perf_counter() - started
        reason = exc.reason if isinstance(exc, WorkerFailure) else f"{type(exc).__name__}: {exc}"
        self.trace.generations.append(
            GenerationRecord(
                model=model,
                kind="generate" if kind == "generate" else "score",
                n=n,
                prompt_tokens=0,
                completion_tokens=0,
                seconds=seconds,
                error=reason,
            )
        )
        self.trace.failures.append(f"{kind} on {model}: {reason}")
        log.warning("worker_call_failed", model=model, kind=kind, reason=reason)
