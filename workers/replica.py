"""The replicas of a ``WorkerPool``: each one's worker, counters and health, and the set.

A ``Replica`` counts the calls it takes (in flight, attempts, successes and their latency,
failures). ``count_failure`` ejects it after ``eject_after`` consecutive failures;
``probe`` asks an ejected replica whether it is healthy again (its worker's ``health()``,
or, lacking one, a one-token generate) and ``readmit`` takes it back; ``probe_ejected``
does both for every ejected replica of a pool.

A ``ReplicaSet`` is a pool's replicas together: which one takes a call (the admitted
replica with the fewest calls in flight among those with a free slot, ties rotating),
waiting for a slot to free, and ejection with background probing until readmission.
Retrying a call is the pool's business.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import structlog

from workers.base import GenerateRequest, SamplingParams, Worker
from workers.pool_stats import ReplicaStats

__all__ = ["Replica", "ReplicaSet", "probe_ejected"]

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


class ReplicaSet:
    """A pool's named workers as replicas, each taking at most ``limit`` calls at once.

    Loop-bound state (the wake-up event, the prober) is rebuilt by ``bind_loop`` when the
    pool is called from a new event loop.
    """

    def __init__(
        self,
        workers: Mapping[str, Worker],
        limit: int | None,
        *,
        eject_after: int | None,
        probe_interval_s: float,
        probe_timeout_s: float,
    ) -> None:
        self.replicas = [Replica(name, worker, limit) for name, worker in workers.items()]
        self.eject_after = eject_after
        self.probe_interval_s = probe_interval_s
        self.probe_timeout_s = probe_timeout_s
        self.ejections = self.readmissions = 0
        self.abandoned = False  # the pool gave up its calls: waiting for a slot ends
        self._turn = 0  # where the tie-break rotation starts
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed = asyncio.Event()  # replaced each time a slot frees or admission changes
        self._prober: asyncio.Task[None] | None = None
        self._probing = True

    def bind_loop(self) -> bool:
        """Rebind to the running loop; True when it is a new one (the previous loop's
        calls have all ended: ``asyncio.run`` cancels leftovers)."""
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return False
        self._loop = loop
        self._changed = asyncio.Event()
        self._prober = None
        if any(r.ejected for r in self.replicas):
            self._start_prober()
        return True

    async def acquire(self, tried: Sequence[Replica]) -> Replica | None:
        """Wait for a replica with a free slot (preferring one not ``tried``) and take the
        slot; None once the calls are ``abandoned``. Bound it with a timeout."""
        while not self.abandoned:
            replica = self._choose(tried)
            if replica is not None:
                replica.in_flight += 1
                return replica
            await self._changed.wait()
        return None

    def release(self, replica: Replica) -> None:
        replica.in_flight -= 1
        self.wake()

    def wake(self) -> None:
        """Wake every call waiting for a slot: a slot freed or admission changed."""
        self._changed.set()
        self._changed = asyncio.Event()

    def failed(self, replica: Replica, reason: str) -> None:
        """Count a failure of ``replica``; eject it (and start probing) after
        ``eject_after`` in a row."""
        log.info("replica_call_failed", replica=replica.name, reason=reason)
        if replica.count_failure(self.eject_after):
            self.ejections += 1
            log.warning("replica_ejected", replica=replica.name, after=self.eject_after)
            self._start_prober()
            self.wake()

    async def stop_probing(self) -> None:
        self._probing = False
        if self._prober is not None:
            self._prober.cancel()
            await asyncio.gather(self._prober, return_exceptions=True)

    def _choose(self, tried: Sequence[Replica]) -> Replica | None:
        admitted = [r for r in self.replicas if not r.ejected] or self.replicas
        fresh = [r for r in admitted if r not in tried] or admitted
        free = [r for r in fresh if r.has_slot()]
        if not free:
            return None
        count = len(self.replicas)
        position = {id(r): i for i, r in enumerate(self.replicas)}
        chosen = min(free, key=lambda r: (r.in_flight, (position[id(r)] - self._turn) % count))
        self._turn = (position[id(chosen)] + 1) % count
        return chosen

    def _start_prober(self) -> None:
        if self._probing and (self._prober is None or self._prober.done()):
            self._prober = asyncio.create_task(self._probe_loop(), name="system2-pool-probe")

    async def _probe_loop(self) -> None:
        while self._probing and any(r.ejected for r in self.replicas):
            await asyncio.sleep(self.probe_interval_s)
            readmitted = await probe_ejected(self.replicas, self.probe_timeout_s)
            if readmitted:
                self.readmissions += len(readmitted)
                self.wake()
