"""One replica of a ``WorkerPool``: its worker, its counters, and its health.

A ``Replica`` counts the calls it takes (in flight, attempts, successes and their latency,
failures). ``count_failure`` ejects it after ``eject_after`` consecutive failures;
``probe`` asks an ejected replica whether it is healthy again (its worker's ``health()``,
or, lacking one, a one-token generate) and ``readmit`` takes it back; ``probe_ejected``
does both for every ejected replica of a pool. Choosing among replicas and retrying is the
pool's business.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import structlog

from workers.base import GenerateRequest, SamplingParams, Worker
from workers.pool_stats import ReplicaStats

__all__ = ["Replica", "probe_ejected"]

log = structlog.get_logger(__name__)

_PROBE = GenerateRequest(prompt="ping", params=SamplingParams(max_tokens=1))


@dataclass(eq=False)
class Replica:
    """``worker`` under the pool's ``name`` for it, taking at most ``limit`` calls at once
    (None: no limit)."""

    name: str
    worker: Worker
    limit: int | None
    in_flight: int = 0
    attempts: int = 0
    successes: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    ejected: bool = False
    ejections: int = 0
    readmissions: int = 0
    latency_total_s: float = 0.0
    latency_max_s: float = 0.0

    def has_slot(self) -> bool:
        return self.limit is None or self.in_flight < self.limit

    def count_success(self, seconds: float) -> None:
        """A call answered in ``seconds``; the run of consecutive failures ends."""
        self.successes += 1
        self.consecutive_failures = 0
        self.latency_total_s += seconds
        self.latency_max_s = max(self.latency_max_s, seconds)

    def count_failure(self, eject_after: int | None) -> bool:
        """A call failed; True when this failure ejects the replica (``eject_after``
        consecutive failures; None: never)."""
        self.failures += 1
        self.consecutive_failures += 1
        if eject_after is None or self.ejected or self.consecutive_failures < eject_after:
            return False
        self.ejected = True
        self.ejections += 1
        return True

    def readmit(self) -> None:
        """Take an ejected replica back (its probe succeeded)."""
        self.ejected = False
        self.consecutive_failures = 0
        self.readmissions += 1

    async def probe(self, timeout_s: float) -> bool:
        """Whether the worker answers its health check within ``timeout_s``."""
        check = getattr(self.worker, "health", None)
        try:
            async with asyncio.timeout(timeout_s):
                if callable(check):
                    return await check() is not False
                await self.worker.generate(_PROBE)
                return True
        except Exception as exc:  # any failure only means: not healthy yet
            log.info("replica_probe_failed", replica=self.name, error=repr(exc))
            return False

    def stats(self) -> ReplicaStats:
        return ReplicaStats(
            name=self.name,
            ejected=self.ejected,
            in_flight=self.in_flight,
            attempts=self.attempts,
            successes=self.successes,
            failures=self.failures,
            consecutive_failures=self.consecutive_failures,
            ejections=self.ejections,
            readmissions=self.readmissions,
            latency_total_s=self.latency_total_s,
            latency_max_s=self.latency_max_s,
        )


async def probe_ejected(replicas: Sequence[Replica], timeout_s: float) -> list[Replica]:
    """Probe every ejected replica at once; readmit and return those found healthy."""
    ejected = [r for r in replicas if r.ejected]
    healthy = await asyncio.gather(*(r.probe(timeout_s) for r in ejected))
    readmitted = []
    for replica, ok in zip(ejected, healthy, strict=True):
        if ok and replica.ejected:
            replica.readmit()
            log.info("replica_readmitted", replica=replica.name)
            readmitted.append(replica)
    return readmitted
