"""``WorkerPool``: one model served by several replicas (any mix of workers), as one worker.

* Balancing: each call goes to the admitted replica with the fewest requests in flight
  (ties rotate), among those with a free slot (``max_concurrency`` per replica); when none
  has one, the call waits at the pool for the first slot to free.
* Retries (``workers.pool_tries``): a replica failure is a ``WorkerFailure`` (unless it
  says ``retryable = False``, e.g. an HTTP 4xx) or a call running past
  ``request_timeout_s``. The call is then retried, on a replica it has not tried yet
  where one exists, up to ``max_attempts`` tries in all and within ``deadline_s``
  (queueing included). Any other exception is the request's own fault: it is raised at
  once and counts against no replica.
* Ejection: ``eject_after`` consecutive failures eject a replica; a background probe calls
  its ``health()`` (or, lacking one, a one-token generate) every ``probe_interval_s`` and
  readmits it once that succeeds. If every replica is ejected, calls still go to them.
* ``close()`` stops accepting calls, lets in-flight ones finish for up to
  ``drain_timeout_s``, fails the rest with a ``WorkerFailure`` saying so, then closes the
  replicas.

``generate_stream`` streams from the chosen replica. A try that fails before its first
item (chunk or result) is retried as above; a replica that fails after items were passed
on counts against it, and the call starts again on another replica, which passes on only
what goes beyond them (``workers.stream_resume``: the replay must repeat what was passed
on, else ``StreamDiverged``); at most ``max_attempts - 1`` such restarts, each tried
like a new call.
``request_timeout_s`` and ``deadline_s`` bound each stream; closing it closes the replica's
stream.

Each result's ``usage`` names the replica that answered and counts attempts and
fail-overs; its ``seconds`` add the pool's own time (queueing, failed tries) to the
replica's. ``stats()`` returns the counters. A pool may serve successive event loops (one
``asyncio.run`` per query): its first call under a new loop rebinds it and resumes probing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import TypeVar

import structlog

from workers.base import (
    GenerateRequest,
    GenerateResult,
    ScoreRequest,
    ScoreResult,
    StepVerifier,
    StreamItem,
    Worker,
)
from workers.errors import WorkerFailure
from workers.guidance_stats import GuidanceStats
from workers.pool_stats import PoolStats
from workers.pool_tries import PoolTries, opened
from workers.replica import ReplicaSet
from workers.stream_resume import PassedOn, resumed
from workers.streaming import close_stream

__all__ = ["WorkerPool"]

log = structlog.get_logger(__name__)

_Result = TypeVar("_Result", GenerateResult, ScoreResult)


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
        self.model_name = model_name
        self.eject_after = eject_after
        self.drain_timeout_s = drain_timeout_s
        self._set = ReplicaSet(
            named,
            max_concurrency,
            eject_after=eject_after,
            probe_interval_s=probe_interval_s,
            probe_timeout_s=probe_timeout_s,
        )
        self._tries = PoolTries(
            model_name,
            self._set,
            max_attempts=max_attempts,
            request_timeout_s=request_timeout_s,
            deadline_s=deadline_s,
            drain_timeout_s=drain_timeout_s,
        )
        self._replicas = self._set.replicas
        self._idle = asyncio.Event()
        self._idle.set()
        self._active = 0
        self._closing = False
        self._closed = asyncio.Event()
        self._requests = self._succeeded = self._failed = 0

    # -- settings read per call ------------------------------------------------------------

    @property
    def max_attempts(self) -> int:
        return self._tries.max_attempts

    @property
    def request_timeout_s(self) -> float | None:
        return self._tries.request_timeout_s

    @request_timeout_s.setter
    def request_timeout_s(self, seconds: float | None) -> None:
        self._tries.request_timeout_s = seconds

    @property
    def deadline_s(self) -> float | None:
        return self._tries.deadline_s

    @deadline_s.setter
    def deadline_s(self, seconds: float | None) -> None:
        self._tries.deadline_s = seconds

    # -- the seam -------------------------------------------------------------------------

    async def generate(self, request: GenerateRequest) -> GenerateResult:
        return await self._call(lambda worker: worker.generate(request))

    async def score(self, request: ScoreRequest) -> ScoreResult:
        return await self._call(lambda worker: worker.score(request))

    async def generate_stream(self, request: GenerateRequest) -> AsyncIterator[StreamItem]:
        self._begin()
        passed = PassedOn()
        restarts = 0
        outcome: BaseException | None = None
        try:
            while True:
                won = await self._tries.run(
                    lambda worker: opened(
                        resumed(worker.generate_stream(request), passed, self.model_name)
                    ),
                    hold=True,
                )
                item, stream = won.value
                try:
                    while not isinstance(item, GenerateResult):
                        passed.record(item)
                        yield item
                        item = await self._tries.next_item(stream, won)
                except WorkerFailure as exc:
                    if not getattr(exc, "retryable", True) or restarts + 1 >= self.max_attempts:
                        raise
                    restarts += 1
                    log.warning(
                        "pool.stream_resumed", model=self.model_name, failed=won.replica.name
                    )
                    continue
                finally:
                    await close_stream(stream)
                    self._set.release(won.replica)
                yield _restarted(won.charge(item, self.model_name), restarts)
                return
        except BaseException as exc:
            outcome = exc
            raise
        finally:
            self._end(outcome)

    @property
    def streams_tokens(self) -> bool:
        """True when every replica does (a call may land on any of them)."""
        return all(r.worker.streams_tokens for r in self._replicas)

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
                self._tries.abandon()
                await self._idle.wait()
        await self._set.stop_probing()
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
            retries=self._tries.retries,
            failovers=self._tries.failovers,
            ejections=self._set.ejections,
            readmissions=self._set.readmissions,
            replicas=tuple(r.stats() for r in self._replicas),
        )

    # -- one call -------------------------------------------------------------------------

    async def _call(self, op: Callable[[Worker], Awaitable[_Result]]) -> _Result:
        self._begin()
        outcome: BaseException | None = None
        try:
            won = await self._tries.run(op)
            return won.charge(won.value, self.model_name)
        except BaseException as exc:
            outcome = exc
            raise
        finally:
            self._end(outcome)

    def _begin(self) -> None:
        if self._closing:
            raise WorkerFailure(self.model_name, "the pool is closed and takes no new requests")
        self._bind_loop()
        self._requests += 1
        self._active += 1
        self._idle.clear()

    def _end(self, outcome: BaseException | None) -> None:
        """A call ended: with ``outcome`` None it succeeded, with an ``Exception`` it
        failed; cancelled (or a stream closed early), it counts as neither."""
        if outcome is None:
            self._succeeded += 1
        elif isinstance(outcome, Exception):
            self._failed += 1
        self._active -= 1
        if self._active == 0:
            self._idle.set()

    def _bind_loop(self) -> None:
        """Fresh loop-bound state when called from a new event loop (``asyncio.run`` per
        query): the previous loop's calls have all ended (asyncio.run cancels leftovers)."""
        if self._set.bind_loop():
            self._idle = asyncio.Event()
            self._idle.set()
            self._tries.forget_tasks()


def _restarted(result: GenerateResult, restarts: int) -> GenerateResult:
    """A streamed result that took ``restarts`` mid-stream fail-overs: each counts as an
    attempt and a fail-over (the tokens of the broken streams are not in its usage)."""
    if not restarts:
        return result
    u = result.usage
    update = {"attempts": u.attempts + restarts, "failovers": u.failovers + restarts}
    return result.model_copy(update={"usage": u.model_copy(update=update)})
