"""The counters a ``WorkerPool`` reports (``WorkerPool.stats()``), for it and each replica."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["PoolStats", "ReplicaStats"]


class ReplicaStats(BaseModel):
    """One replica's counters; latency is over its successful calls."""

    model_config = ConfigDict(frozen=True)

    name: str
    ejected: bool
    in_flight: int
    attempts: int
    successes: int
    failures: int
    consecutive_failures: int
    ejections: int
    readmissions: int
    latency_total_s: float
    latency_max_s: float

    @property
    def latency_mean_s(self) -> float:
        return self.latency_total_s / self.successes if self.successes else 0.0


class PoolStats(BaseModel):
    """The pool's counters: calls taken, answered and failed, retries (tries after the
    first), fail-overs (retries that moved to another replica), ejections, readmissions."""

    model_config = ConfigDict(frozen=True)

    requests: int
    succeeded: int
    failed: int
    retries: int
    failovers: int
    ejections: int
    readmissions: int
    replicas: tuple[ReplicaStats, ...]
