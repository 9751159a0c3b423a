"""A pool replica's counters, ejection, probing and readmission (``workers.replica``)."""

from __future__ import annotations

import asyncio

from workers.base import GenerateRequest, GenerateResult
from workers.errors import WorkerFailure
from workers.replica import Replica, probe_ejected
from workers.scripted import ScriptedWorker, cycle_texts


class HealthWorker(ScriptedWorker):
    """Test double: a scripted worker whose ``health()`` passes while ``healthy``."""

    def __init__(self) -> None:
        super().__init__("m", cycle_texts(["ok"]))
        self.healthy = False

    async def health(self) -> None:
        if not self.healthy:
            raise WorkerFailure("m", "down")


class HangingWorker(ScriptedWorker):
    """Test double without ``health()`` whose generate never answers."""

    def __init__(self) -> None:
        super().__init__("m", cycle_texts(["ok"]))
        self.probed: list[GenerateRequest] = []

    async def generate(self, request: GenerateRequest) -> GenerateResult:
        self.probed.append(request)
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


def test_consecutive_failures_eject_once_and_a_success_resets_the_run() -> None:
    """``eject_after`` failures in a row eject (reported once); a success in between
    restarts the count; None never ejects."""
    replica = Replica("m#0", ScriptedWorker("m", cycle_texts(["x"])), limit=None)
    assert not replica.count_failure(2)
    replica.count_success(0.5)
    assert not replica.count_failure(2)
    assert replica.count_failure(2)
    assert not replica.count_failure(2)  # already ejected
    stats = replica.stats()
    assert (stats.ejected, stats.ejections, stats.failures, stats.consecutive_failures) == (
        True,
        1,
        4,
        3,
    )
    assert (stats.successes, stats.latency_mean_s) == (1, 0.5)
    never = Replica("m#1", ScriptedWorker("m", cycle_texts(["x"])), limit=1)
    assert not any(never.count_failure(None) for _ in range(10))
    assert never.has_slot()
    never.in_flight = 1
    assert not never.has_slot()


async def test_probing_readmits_only_replicas_found_healthy() -> None:
    """``probe_ejected`` asks every ejected replica's ``health()`` and readmits those that
    pass; admitted replicas are left alone."""
    worker = HealthWorker()
    sick = Replica("m#0", worker, limit=None, ejected=True, consecutive_failures=3)
    admitted = Replica("m#1", HealthWorker(), limit=None)
    assert await probe_ejected([sick, admitted], timeout_s=1.0) == []
    worker.healthy = True
    assert await probe_ejected([sick, admitted], timeout_s=1.0) == [sick]
    assert (sick.ejected, sick.consecutive_failures, sick.readmissions) == (False, 0, 1)
    assert admitted.readmissions == 0


async def test_a_probe_without_health_sends_a_tiny_generate_and_times_out() -> None:
    """Lacking ``health()``, a probe is a one-token generate, bounded by the timeout."""
    worker = HangingWorker()
    replica = Replica("m#0", worker, limit=None, ejected=True)
    assert not await replica.probe(timeout_s=0.01)
    assert [r.params.max_tokens for r in worker.probed] == [1]
