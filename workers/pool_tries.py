"""``PoolTries``: how a ``WorkerPool`` tries one call on its replicas until one answers.

A try takes a slot on the replica the ``ReplicaSet`` chooses (waiting for one until the
deadline), preferring replicas not tried yet. A ``WorkerFailure`` (unless it says
``retryable = False``) or a try running past ``request_timeout_s`` counts against the
replica and moves the call to the next try, up to ``max_attempts`` in all and within
``deadline_s`` (queueing included); any other exception is raised at once. Each try runs
in a task that ``abandon`` cancels (the pool's drain ran out of time).

For a stream, a try is opening it and reading its first item (``opened``); the items after
that are read with ``next_item``, whose failures are raised (the pool may then start the
whole stream again elsewhere: ``workers.stream_resume``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from workers.base import GenerateResult, ScoreResult, StreamItem, Worker
from workers.errors import WorkerFailure
from workers.replica import Replica, ReplicaSet
from workers.streaming import close_stream

__all__ = ["PoolTries", "Stream", "StreamTimedOut", "Won", "opened"]

_T = TypeVar("_T")
_Result = TypeVar("_Result", GenerateResult, ScoreResult)

Stream = AsyncIterator[StreamItem]


class StreamTimedOut(WorkerFailure):
    """A stream ran past its request timeout or deadline (the pool does not start it again:
    the time is spent)."""

    retryable = False


class _Retry(Exception):
    """An attempt failed in a way another try may fix."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Won(Generic[_T]):
    """The try that succeeded: what it returned, on which replica, after how many tries
    and fail-overs, the pool's own seconds before it (queueing, failed tries), and when
    it must be over (loop time; None: no limit)."""

    value: _T
    replica: Replica
    attempt: int
    failovers: int
    overhead_s: float
    until: float | None

    def charge(self, result: _Result, pool: str) -> _Result:
        """``result`` as the pool returns it: usage naming the replica, counting tries."""
        u = result.usage
        usage = u.model_copy(
            update={
                "seconds": u.seconds + self.overhead_s,
                "replica": f"{self.replica.name}/{u.replica}" if u.replica else self.replica.name,
                "attempts": self.attempt - 1 + u.attempts,
                "failovers": self.failovers + u.failovers,
            }
        )
        return result.model_copy(update={"usage": usage, "model": pool})


class PoolTries:
    """Tries calls on ``replicas`` (see the module's docstring); counts retries and
    fail-overs."""

    def __init__(
        self,
        model_name: str,
        replicas: ReplicaSet,
        *,
        max_attempts: int,
        request_timeout_s: float | None,
        deadline_s: float | None,
        drain_timeout_s: float,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.model_name = model_name
        self.replicas = replicas
        self.max_attempts = max_attempts
        self.request_timeout_s = request_timeout_s
        self.deadline_s = deadline_s
        self.drain_timeout_s = drain_timeout_s
        self.retries = self.failovers = 0
        self._tasks: set[asyncio.Future[Any]] = set()

    def abandon(self) -> None:
        """Give up every call: tries in flight and calls waiting for a slot fail."""
        self.replicas.abandoned = True
        for task in list(self._tasks):
            task.cancel()
        self.replicas.wake()

    def forget_tasks(self) -> None:
        """A new event loop: the previous loop's tries have all ended."""
        self._tasks.clear()

    async def run(self, op: Callable[[Worker], Awaitable[_T]], *, hold: bool = False) -> Won[_T]:
        """Try ``op`` until a replica answers. The winner's slot is released unless
        ``hold`` (the caller then releases it: ``replicas.release(won.replica)``)."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = None if self.deadline_s is None else started + self.deadline_s
        tried: list[Replica] = []
        errors: list[str] = []
        failovers = 0
        for attempt in range(1, self.max_attempts + 1):
            replica = await self._acquire(tried, deadline, errors)
            if tried:
                self.retries += 1
                if replica is not tried[-1]:
                    failovers += 1
                    self.failovers += 1
            tried.append(replica)
            attempt_started = loop.time()
            limit, by_deadline = self._limit(attempt_started, deadline)
            try:
                value = await self._attempt(replica, op, limit, by_deadline, errors)
            except _Retry as failed:
                self.replicas.release(replica)
                errors.append(f"{replica.name}: {failed.reason}")
                continue
            except BaseException:
                self.replicas.release(replica)
                raise
            if not hold:
                self.replicas.release(replica)
            until = None if limit is None else attempt_started + limit
            return Won(value, replica, attempt, failovers, attempt_started - started, until)
        raise WorkerFailure(
            self.model_name,
            f"all {self.max_attempts} attempts failed: {'; '.join(errors)}",
        )

    async def next_item(self, stream: Stream, won: Won[Any]) -> StreamItem:
        """The next item of a stream already passed on; a failure now is raised (and
        counts against the replica), not retried here."""
        try:
            async with asyncio.timeout_at(won.until):
                return await self._tracked(won.replica, _next_item(stream))
        except TimeoutError:
            what = "deadline" if self.deadline_s is not None else "request timeout"
            reason = f"the stream ran past the {what}"
            self.replicas.failed(won.replica, reason)
            raise StreamTimedOut(self.model_name, f"{won.replica.name}: {reason}") from None
        except _Retry as failed:
            reason = failed.reason
        except WorkerFailure as exc:
            if getattr(exc, "retryable", True):
                self.replicas.failed(won.replica, exc.reason)
            raise
        self.replicas.failed(won.replica, reason)
        raise WorkerFailure(self.model_name, f"{won.replica.name}: {reason}")

    async def _acquire(
        self, tried: list[Replica], deadline: float | None, errors: list[str]
    ) -> Replica:
        """Wait for a replica with a free slot (until the deadline) and take the slot."""
        try:
            async with asyncio.timeout_at(deadline):
                replica = await self.replicas.acquire(tried)
        except TimeoutError:
            raise self._deadline_failure(len(tried), errors, "waiting for a free replica") from None
        if replica is None:
            raise self._abandon_failure()
        return replica

    async def _attempt(
        self,
        replica: Replica,
        op: Callable[[Worker], Awaitable[_T]],
        limit: float | None,
        by_deadline: bool,
        errors: list[str],
    ) -> _T:
        """One try on ``replica``; a failure another try may fix raises ``_Retry``."""
        loop = asyncio.get_running_loop()
        replica.attempts += 1
        started = loop.time()
        try:
            async with asyncio.timeout(limit):
                result = await self._tracked(replica, op(replica.worker))
        except TimeoutError:
            if by_deadline:
                raise self._deadline_failure(len(errors) + 1, errors, "on a replica") from None
            reason = f"timed out after {limit:g}s"
        except WorkerFailure as exc:
            if not getattr(exc, "retryable", True):
                raise
            reason = exc.reason
        except _Retry as failed:
            reason = failed.reason
        else:
            replica.count_success(loop.time() - started)
            return result
        self.replicas.failed(replica, reason)
        raise _Retry(reason)

    async def _tracked(self, replica: Replica, call: Awaitable[_T]) -> _T:
        """Await ``call`` in a task ``abandon`` can cancel."""
        task = asyncio.ensure_future(call)
        self._tasks.add(task)
        try:
            return await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # our caller cancelled this call (or a timeout did)
            if self.replicas.abandoned:
                raise self._abandon_failure() from None
            raise _Retry("the replica's call was cancelled") from None
        finally:
            self._tasks.discard(task)

    def _limit(self, now: float, deadline: float | None) -> tuple[float | None, bool]:
        """The time a try may take, and whether the overall deadline is what limits it."""
        left = None if deadline is None else max(deadline - now, 0.0)
        if left is not None and (self.request_timeout_s is None or left < self.request_timeout_s):
            return left, True
        return self.request_timeout_s, False

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


async def opened(stream: Stream) -> tuple[StreamItem, Stream]:
    """``stream`` with its first item read (a try of a streamed call); closed again if
    that fails."""
    try:
        return await _next_item(stream), stream
    except BaseException:
        await close_stream(stream)
        raise


async def _next_item(stream: Stream) -> StreamItem:
    try:
        return await anext(stream)
    except StopAsyncIteration:
        raise _Retry("the stream ended without a result") from None
