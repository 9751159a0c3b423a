"""``CallRecorder``: every worker call a strategy makes goes through here, so each is
charged to the query's usage and written to its trace the same way.

It is the only writer of the trace's generations and candidates; strategies hand it what
they made (``record_candidates``) and never read the trace back. The cost of a block of
calls comes from it too: ``mark()`` before the block, ``cost_since(mark)`` after.

It also keeps the query's token budget (``max_total_tokens``: a ``generate`` or ``score``
call asked for once the query's prompt + completion tokens reach it is refused with
``BudgetExhausted``, after ``on_exhausted`` is told) and reports every call, and the
candidates made, to the query's event sink (``orchestrator.events``).

``stream_generate`` is ``generate`` through the worker's stream (``Worker.generate_stream``):
each sample's text reaches the sink as ``TokenDelta``s while the engine makes it, and
cancelling the call closes the stream, so the engine stops; the tokens it had streamed are
charged (``GenerationRecord.cancelled``). Strategies stream when someone watches
(``observed``) or when they may cancel samples (an exact early stop).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from orchestrator.budget import BudgetExhausted
from orchestrator.errors import NoStepVerifierError, UnknownWorkerError
from orchestrator.events import (
    CallFinished,
    CallStarted,
    CandidatesMade,
    EventSink,
    QueryEvent,
    TokenDelta,
)
from orchestrator.types import CallKind, Candidate, GenerationRecord, Trace, Usage
from workers.base import (
    GenerateRequest,
    GenerateResult,
    Prompt,
    ScoreRequest,
    ScoreResult,
    Worker,
    WorkerUsage,
)
from workers.errors import WorkerFailure
from workers.streaming import closing

if TYPE_CHECKING:
    from workers.base import StepVerifier

__all__ = ["STEP_VERIFIER", "CallCost", "CallMark", "CallRecorder"]

STEP_VERIFIER = "step_verifier"
"""The name step-verifier calls are charged to in usage and the trace."""

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class CallMark:
    """A point in a query's worker calls (``CallRecorder.mark``)."""

    calls: int
    started: float


@dataclass(frozen=True)
class CallCost:
    """What the calls since a mark cost: their number, tokens, summed worker seconds and
    the wall-clock seconds since the mark. Failed calls count (with their seconds)."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    wall_seconds: float = 0.0


class CallRecorder:
    def __init__(
        self,
        workers: Mapping[str, Worker],
        usage: Usage,
        trace: Trace,
        *,
        step_verifier: StepVerifier | None = None,
        max_total_tokens: int | None = None,
        on_exhausted: Callable[[], None] | None = None,
        on_event: EventSink | None = None,
    ) -> None:
        self._workers = workers
        self._usage = usage
        self._trace = trace
        self.step_verifier = step_verifier
        self.max_total_tokens = max_total_tokens
        self._on_exhausted = on_exhausted
        self._on_event = on_event
        self._recorded: set[int] = set()
        self._call_ids = itertools.count()

    @property
    def observed(self) -> bool:
        """Whether the query has an event sink (so streaming text is worth it)."""
        return self._on_event is not None

    @property
    def spent_tokens(self) -> int:
        """Prompt + completion tokens of every call so far."""
        return self._usage.prompt_tokens + self._usage.completion_tokens

    def emit(self, event: QueryEvent) -> None:
        """Hand ``event`` to the query's sink, if any; a sink that raises is logged."""
        if self._on_event is None:
            return
        try:
            self._on_event(event)
        except Exception:
            log.exception("event_sink_failed", event_type=type(event).__name__)

    def record_candidates(self, candidates: Iterable[Candidate]) -> None:
        """Keep ``candidates`` in the trace, as soon as they are made: a later worker
        failure fails the query but leaves them there."""
        made = tuple(candidates)
        self._trace.candidates.extend(made)
        if made:
            self.emit(CandidatesMade(made, total=len(self._trace.candidates)))

    def mark(self) -> CallMark:
        """The point to measure a block of calls from (``cost_since``)."""
        return CallMark(calls=len(self._trace.generations), started=time.perf_counter())

    def cost_since(self, mark: CallMark) -> CallCost:
        """What every call recorded since ``mark`` cost (calls running concurrently with
        the block, from elsewhere in the query, count too)."""
        records = self._trace.generations[mark.calls :]
        return CallCost(
            calls=len(records),
            prompt_tokens=sum(r.prompt_tokens for r in records),
            completion_tokens=sum(r.completion_tokens for r in records),
            seconds=sum(r.seconds for r in records),
            wall_seconds=time.perf_counter() - mark.started,
        )

    def record_failure(self, where: str, exc: Exception) -> None:
        """Keep in the trace why the query failed (``where``: the step that raised), unless
        the worker call that raised ``exc`` recorded it already."""
        if id(exc) in self._recorded:
            return
        self._recorded.add(id(exc))
        self._trace.failures.append(f"{where}: {type(exc).__name__}: {exc}")

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
        call = self._start(STEP_VERIFIER, "score_steps", len(paths))
        started = time.perf_counter()
        try:
            scores = await asyncio.gather(*(verifier.score_steps(prompt, p) for p in paths))
        except asyncio.CancelledError:
            self.emit(self._cancelled(call, started))
            raise
        except Exception as exc:
            self._record_failure(call, started, exc)
            raise
        seconds = time.perf_counter() - started
        self._usage.add(STEP_VERIFIER, 0, 0, seconds)
        self.emit(
            CallFinished(call.call_id, STEP_VERIFIER, "score_steps", len(paths), seconds=seconds)
        )
        self._trace.generations.append(
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
        self._admit()
        call = self._start(model, "generate", request.params.n)
        started = time.perf_counter()
        try:
            result = await worker.generate(request)
        except asyncio.CancelledError:
            self.emit(self._cancelled(call, started))
            raise
        except Exception as exc:
            self._record_failure(call, started, exc)
            raise
        self._generated(call, result)
        return result

    async def stream_generate(
        self, model: str, request: GenerateRequest, *, deltas: bool = True
    ) -> GenerateResult:
        """``generate`` through the worker's stream, its text sent to the sink as
        ``TokenDelta``s (unless not ``deltas``) as it is made; see the module's docstring."""
        worker = self.worker(model)
        self._admit()
        call = self._start(model, "generate", request.params.n)
        started = time.perf_counter()
        streamed = 0
        result: GenerateResult | None = None
        try:
            async with closing(worker.generate_stream(request)) as stream:
                async for item in stream:
                    if isinstance(item, GenerateResult):
                        result = item
                        continue
                    streamed += len(item.token_ids)
                    if deltas and item.text:
                        self.emit(TokenDelta(call.call_id, model, item.index, item.text))
            if result is None:
                raise WorkerFailure(model, "the stream ended without a result")
        except asyncio.CancelledError:
            self._stream_cancelled(call, started, streamed)
            raise
        except Exception as exc:
            self._record_failure(call, started, exc)
            raise
        self._generated(call, result)
        return result

    async def score(self, model: str, request: ScoreRequest) -> ScoreResult:
        worker = self.worker(model)
        self._admit()
        n = len(request.continuations)
        call = self._start(model, "score", n)
        started = time.perf_counter()
        try:
            result = await worker.score(request)
        except asyncio.CancelledError:
            self.emit(self._cancelled(call, started))
            raise
        except Exception as exc:
            self._record_failure(call, started, exc)
            raise
        u = result.usage
        self._usage.add(model, u.prompt_tokens, 0, u.seconds)
        self.emit(self._finished(call, u, completion_tokens=0))
        self._trace.generations.append(
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

    def _generated(self, call: CallStarted, result: GenerateResult) -> None:
        u = result.usage
        self._usage.add(
            call.model,
            u.prompt_tokens,
            u.completion_tokens,
            u.seconds,
            latent_tokens=u.latent_tokens,
        )
        self.emit(self._finished(call, u))
        self._trace.generations.append(
            GenerationRecord(
                model=call.model,
                kind="generate",
                n=call.n,
                prompt_tokens=u.prompt_tokens,
                completion_tokens=u.completion_tokens,
                seconds=u.seconds,
                replica=u.replica,
                attempts=u.attempts,
                failovers=u.failovers,
            )
        )
        log.debug("generated", model=call.model, n=call.n, tokens=u.completion_tokens)

    def _stream_cancelled(self, call: CallStarted, started: float, streamed: int) -> None:
        """A streamed call cancelled in flight: charged the tokens it had streamed."""
        seconds = time.perf_counter() - started
        self._usage.add(call.model, 0, streamed, seconds)
        self._trace.generations.append(
            GenerationRecord(
                model=call.model,
                kind="generate",
                n=call.n,
                prompt_tokens=0,
                completion_tokens=streamed,
                seconds=seconds,
                cancelled=True,
            )
        )
        self.emit(
            CallFinished(
                call.call_id,
                call.model,
                call.kind,
                call.n,
                completion_tokens=streamed,
                seconds=seconds,
                cancelled=True,
            )
        )

    def _admit(self) -> None:
        """Refuse a call once the token budget is spent (telling ``on_exhausted`` first)."""
        limit = self.max_total_tokens
        if limit is None or self.spent_tokens < limit:
            return
        log.info("budget_exhausted", spent=self.spent_tokens, limit=limit)
        if self._on_exhausted is not None:
            self._on_exhausted()
        raise BudgetExhausted(self.spent_tokens, limit)

    def _start(self, model: str, kind: CallKind, n: int) -> CallStarted:
        call = CallStarted(next(self._call_ids), model, kind, n)
        self.emit(call)
        return call

    @staticmethod
    def _finished(
        call: CallStarted, u: WorkerUsage, *, completion_tokens: int | None = None
    ) -> CallFinished:
        return CallFinished(
            call.call_id,
            call.model,
            call.kind,
            call.n,
            prompt_tokens=u.prompt_tokens,
            completion_tokens=u.completion_tokens
            if completion_tokens is None
            else completion_tokens,
            seconds=u.seconds,
            failovers=u.failovers,
        )

    @staticmethod
    def _cancelled(call: CallStarted, started: float) -> CallFinished:
        seconds = time.perf_counter() - started
        return CallFinished(
            call.call_id, call.model, call.kind, call.n, seconds=seconds, cancelled=True
        )

    def _record_failure(self, call: CallStarted, started: float, exc: Exception) -> None:
        model, kind, n = call.model, call.kind, call.n
        seconds = time.perf_counter() - started
        reason = exc.reason if isinstance(exc, WorkerFailure) else f"{type(exc).__name__}: {exc}"
        self._trace.generations.append(
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
        self._trace.failures.append(f"{kind} on {model}: {reason}")
        self._recorded.add(id(exc))
        self.emit(CallFinished(call.call_id, model, kind, n, seconds=seconds, error=reason))
        log.warning("worker_call_failed", model=model, kind=kind, reason=reason)
