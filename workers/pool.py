"""``WorkerPool``: one model served by several replicas (any mix of workers), as one worker.

* Balancing: each call goes to the admitted replica with the fewest requests in flight
  (ties rotate), among those with a free slot (``max_concurrency`` per replica); when none
  has one, the call waits at the pool for the first slot to free.
* Retries: a replica failure is a ``WorkerFailure`` (unless it says ``retryable = False``,
  e.g. an HTTP 4xx) or a call running past ``request_timeout_s``. The call is then retried,
  on a replica it has not tried yet where one exists, up to ``max_attempts`` tries in all
  and within ``deadline_s`` (queueing included). Any other exception is the request's own
  fault: it is raised at once and counts against no replica.
* Ejection: ``eject_after`` consecutive failures eject a replica; a background probe calls
  its ``health()`` (or, lacking one, a one-token generate) every ``probe_interval_s`` and
  readmits it once that succeeds. If every replica is ejected, calls still go to them.
* ``close()`` stops accepting calls, lets in-flight ones finish for up to
  ``drain_timeout_s``, fails the rest with a ``WorkerFailure`` saying so, then closes the
  replicas.

Each result's ``usage`` names the replica that answered and counts attempts and
fail-overs; its ``seconds`` add the pool's own time (queueing, failed tries) to the
replica's. ``stats()`` returns the counters. A pool may serve successive event loops (one
``asyncio.run`` per query): its first call under a new loop rebinds it and resumes probing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import structlog

from workers.base import (
    GenerateRequest,
    GenerateResult,
    ScoreRequest,
    ScoreResult,
    StepVerifier,
    Worker,
)
from workers.errors import WorkerFailure
from workers.guidance_stats import GuidanceStats
from workers.pool_stats import PoolStats
from workers.replica import Replica, probe_ejected

__all__ = ["WorkerPool"]

log = structlog.get_logger(__name__)

_Result = TypeVar("_Result", GenerateResult, ScoreResult)


class _Retry(Exception):
    """An attempt failed in a way another try may fix."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class WorkerPool(Worker):
    """Replicas of one model behind the worker seam, balanced, retried and health-checked.

    Example:
        >>> pool = WorkerPool("m", [ScriptedWorker("m", cycle_texts(["4"]))] * 2)  # doctest: +SKIP
        >>> result = await pool.generate(GenerateRequest(prompt="2+2="))  # doctest: +SKIP
        >>> result.usage.replica  # doctest: +SKIP
        'm#0'
    """

    def __init__(
        self,
        model_name: str,
        replicas: Sequence[Worker] | Mapping[str, Worker],
        *,
        max_concurrency: int | None = None,
        max_attempts: int = 3,
        request_timeout_s: float | None = None,
        deadline_s: float | None = None,
        eject_after: int | None = 3,
        probe_interval_s: float = 5.0,
        probe_timeout_s: float = 10.0,
        drain_timeout_s: float = 30.0,
    ) -> None:
        named = (
            dict(replicas)
            if isinstance(replicas, Mapping)
            else {f"{model_name}#{i}": w for i, w in enumerate(replicas)}
        )
        if not named:
            raise ValueError(f"pool {model_name!r} has no replicas")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.model_name = model_name
        self.max_attempts = max_attempts
        self.request_timeout_s = request_timeout_s
        self.deadline_s = deadline_s
        self.eject_after = eject_after
        self.probe_interval_s = probe_interval_s
        self.probe_timeout_s = probe_timeout_s
        self.drain_timeout_s = drain_timeout_s
        self._replicas = [Replica(n, w, max_concurrency) for n, w in named.items()]
        self._turn = 0  # where the tie-break rotation starts
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed = asyncio.Event()  # replaced each time a slot frees or admission changes
        self._idle = asyncio.Event()
        self._idle.set()
        self._active = 0
        self._attempt_tasks: set[asyncio.Future[Any]] = set()
        self._prober: asyncio.Task[None] | None = None
        self._closing = False
        self._abandoned = False
        self._closed = asyncio.Event()
        self._requests = self._succeeded = self._failed = 0
        self._retries = self._failovers = self._ejections = self._readmissions = 0

    # -- the seam -------------------------------------------------------------------------

    async def generate(self, request: GenerateRequest) -> GenerateResult:
        return await self._call(lambda worker: worker.generate(request))

    async def score(self, request: ScoreRequest) -> ScoreResult:
        return await self._call(lambda worker: worker.score(request))

    @property
    def supports_guidance(self) -> bool:
        """True when every replica does (a guided call may land on any of them)."""
        return all(r.worker.supports_guidance for r in self._replicas)

    @property
    def guidance_stats(self) -> GuidanceStats | None:
        """Summed over the replicas that keep stats (None when none does)."""
        kept = [r.worker.guidance_stats for r in self._replicas]
        found = [stats for stats in kept if stats is not None]
        return GuidanceStats.total(found) if found else None

    def token_step_verifier(self) -> StepVerifier:
        """The first replica's (replicas of one model share its verifier)."""
        return self._replicas[0].worker.token_step_verifier()

    async def decode_tokens(self, token_ids: Sequence[int]) -> str:
        """Decoded by the first replica (replicas of one model share its tokenizer)."""
        return await self._replicas[0].worker.decode_tokens(token_ids)

    async def close(self) -> None:
        """Stop taking calls, drain in-flight ones (up to ``drain_timeout_s``), close all."""
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        self._bind_loop()
        if self._active:
            try:
                await asyncio.wait_for(self._idle.wait(), self.drain_timeout_s)
            except TimeoutError:
                log.warning("pool_drain_timeout", model=self.model_name, in_flight=self._active)
                self._abandoned = True
                for task in list(self._attempt_tasks):
                    task.cancel()
                self._wake()
                await self._idle.wait()
        if self._prober is not None:
            self._prober.cancel()
            await asyncio.gather(self._prober, return_exceptions=True)
        outcomes = await asyncio.gather(
            *(r.worker.close() for r in self._replicas), return_exceptions=True
        )
        for replica, outcome in zip(self._replicas, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                log.warning("replica_close_failed", replica=replica.name, error=repr(outcome))
        self._closed.set()

    # -- beyond the seam ------------------------------------------------------------------

    async def health(self) -> None:
        """Raise ``WorkerFailure`` if the pool is closed or every replica is ejected."""
        if self._closing:
            raise WorkerFailure(self.model_name, "the pool is closed")
        if all(r.ejected for r in self._replicas):
            raise WorkerFailure(self.model_name, "every replica of the pool is ejected")

    def stats(self) -> PoolStats:
        return PoolStats(
            requests=self._requests,
            succeeded=self._succeeded,
            failed=self._failed,
            retries=self._retries,
            failovers=self._failovers,
            ejections=self._ejections,
            readmissions=self._readmissions,
            replicas=tuple(r.stats() for r in self._replicas),
        )

    # -- one call -------------------------------------------------------------------------

    async def _call(self, op: Callable[[Worker], Awaitable[_Result]]) -> _Result:
        if self._closing:
            raise WorkerFailure(self.model_name, "the pool is closed and takes no new requests")
        self._bind_loop()
        self._requests += 1
        self._active += 1
        self._idle.clear()
        try:
            result = await self._tries(op)
        except Exception:
            self._failed += 1
            raise
        else:
            self._succeeded += 1
            return result
        finally:
            self._active -= 1
            if self._active == 0:
                self._idle.set()

    async def _tries(self, op: Callable[[Worker], Awaitable[_Result]]) -> _Result:
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = None if self.deadline_s is None else started + self.deadline_s
        tried: list[Replica] = []
        errors: list[str] = []
        failovers = 0
        for attempt in range(1, self.max_attempts + 1):
            replica = await self._acquire(tried, deadline, errors)
            if tried:
                self._retries += 1
                if replica is not tried[-1]:
                    failovers += 1
                    self._failovers += 1
            tried.append(replica)
            attempt_started = loop.time()
            try:
                result = await self._attempt(replica, op, deadline, errors)
            except _Retry as failed:
                errors.append(f"{replica.name}: {failed.reason}")
                continue
            finally:
                replica.in_flight -= 1
                self._wake()
            pool_overhead = attempt_started - started  # queueing and failed tries
            u = result.usage
            usage = u.model_copy(
                update={
                    "seconds": u.seconds + pool_overhead,
                    "replica": f"{replica.name}/{u.replica}" if u.replica else replica.name,
                    "attempts": attempt - 1 + u.attempts,
                    "failovers": failovers + u.failovers,
                }
            )
            return result.model_copy(update={"usage": usage, "model": self.model_name})
        raise WorkerFailure(
            self.model_name,
            f"all {self.max_attempts} attempts failed: {'; '.join(errors)}",
        )

    async def _acquire(
        self, tried: list[Replica], deadline: float | None, errors: list[str]
    ) -> Replica:
        """Wait for a replica with a free slot (until the deadline) and take the slot."""
        try:
            async with asyncio.timeout_at(deadline):
                while True:
                    if self._abandoned:
                        raise self._abandon_failure()
                    replica = self._choose(tried)
                    if replica is not None:
                        break
                    await self._changed.wait()
        except TimeoutError:
            raise self._deadline_failure(len(tried), errors, "waiting for a free replica") from None
        replica.in_flight += 1
        return replica

    def _choose(self, tried: list[Replica]) -> Replica | None:
        admitted = [r for r in self._replicas if not r.ejected] or self._replicas
        fresh = [r for r in admitted if r not in tried] or admitted
        free = [r for r in fresh if r.has_slot()]
        if not free:
            return None
        count = len(self._replicas)
        position = {id(r): i for i, r in enumerate(self._replicas)}
        chosen = min(free, key=lambda r: (r.in_flight, (position[id(r)] - self._turn) % count))
        self._turn = (position[id(chosen)] + 1) % count
        return chosen

    async def _attempt(
        self,
        replica: Replica,
        op: Callable[[Worker], Awaitable[_Result]],
        deadline: float | None,
        errors: list[str],
    ) -> _Result:
        """One try on ``replica``; a failure another try may fix raises ``_Retry``."""
        loop = asyncio.get_running_loop()
        limit, by_deadline = self._attempt_limit(loop.time(), deadline)
        replica.attempts += 1
        task = asyncio.ensure_future(op(replica.worker))
        self._attempt_tasks.add(task)
        started = loop.time()
        try:
            async with asyncio.timeout(limit):
                result = await task
        except TimeoutError:
            if by_deadline:
                raise self._deadline_failure(len(errors) + 1, errors, "on a replica") from None
            raise self._failed_on(replica, f"timed out after {limit:g}s") from None
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # our caller cancelled this call
            if self._abandoned:
                raise self._abandon_failure() from None
            raise self._failed_on(replica, "the replica's call was cancelled") from None
        except WorkerFailure as exc:
            if not getattr(exc, "retryable", True):
                raise
            raise self._failed_on(replica, exc.reason) from None
        finally:
            self._attempt_tasks.discard(task)
        replica.count_success(loop.time() - started)
        return result

    def _attempt_limit(self, now: float, deadline: float | None) -> tuple[float | None, bool]:
        """The time this try may take, and whether the overall deadline is what limits it."""
        left = None if deadline is None else max(deadline - now, 0.0)
        if left is not None and (self.request_timeout_s is None or left < self.request_timeout_s):
            return left, True
        return self.request_timeout_s, False

    # -- failures, ejection and probing ---------------------------------------------------

    def _failed_on(self, replica: Replica, reason: str) -> _Retry:
        ejected = replica.count_failure(self.eject_after)
        log.info("replica_call_failed", replica=replica.name, reason=reason)
        if ejected:
            self._ejections += 1
            log.warning("replica_ejected", replica=replica.name, after=self.eject_after)
            self._start_prober()
            self._wake()
        return _Retry(reason)

    def _start_prober(self) -> None:
        if not self._closing and (self._prober is None or self._prober.done()):
            self._prober = asyncio.create_task(
                self._probe_loop(), name=f"system2-pool-probe-{self.model_name}"
            )

    async def _probe_loop(self) -> None:
        while not self._closing and any(r.ejected for r in self._replicas):
            await asyncio.sleep(self.probe_interval_s)
            readmitted = await probe_ejected(self._replicas, self.probe_timeout_s)
            if readmitted:
                self._readmissions += len(readmitted)
                self._wake()

    # -- helpers --------------------------------------------------------------------------

    def _bind_loop(self) -> None:
        """Fresh loop-bound primitives when called from a new event loop (``asyncio.run`` per
        query): the previous loop's calls have all ended (asyncio.run cancels leftovers)."""
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return
        self._loop = loop
        self._changed = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._attempt_tasks.clear()
        self._prober = None
        if any(r.ejected for r in self._replicas):
            self._start_prober()

    def _wake(self) -> None:
        """Wake every call waiting for a slot: a slot freed or admission changed."""
        self._changed.set()
        self._changed = asyncio.Event()

    def _deadline_failure(self, attempts: int, errors: list[str], where: str) -> WorkerFailure:
        tail = f"; earlier failures: {'; '.join(errors)}" if errors else ""
        return WorkerFailure(
            self.model_name,
            f"deadline of {self.deadline_s:g}s exceeded {where} after {attempts} attempt(s){tail}",
        )

    def _abandon_failure(self) -> WorkerFailure:
        return WorkerFailure(
            self.model_name,
            f"the pool closed before this request finished (drain timeout "
            f"{self.drain_timeout_s:g}s)",
        )
