"""WorkerPool over ``FlakyWorker`` replicas (scripted test doubles with injected delays,
gates and failures): balancing, limits, fail-over, ejection and probing, deadlines,
graceful close, and the pool's config."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import TypeAdapter

from orchestrator.recorder import CallRecorder
from orchestrator.types import Trace, Usage
from workers.base import GenerateRequest, GenerateResult, ScoreRequest, ScoreResult
from workers.config import OpenAIWorkerConfig, PoolConfig, WorkerConfig, build_worker
from workers.errors import WorkerFailure
from workers.openai.worker import OpenAIWorker
from workers.pool import WorkerPool
from workers.scripted import ScriptedWorker


class FlakyWorker(ScriptedWorker):
    """Test double: a scripted worker that answers "<name>:<request_id>" after ``delay``
    seconds (or once its ``gate`` opens), fails while ``failing`` (or after
    ``fail_after`` answers), and records how many calls it ran at once."""

    def __init__(self, name: str, *, delay: float = 0.0, seconds_per_call: float = 0.0) -> None:
        super().__init__("m", lambda request, i: f"{name}:{request.request_id}")
        self.seconds_per_call = seconds_per_call
        self.name = name
        self.delay = delay
        self.gate: asyncio.Event | None = None
        self.failing = False
        self.fail_after: int | None = None
        self.answered: list[str] = []
        self.in_flight = 0
        self.peak_in_flight = 0
        self.closed = False

    async def _enter(self) -> None:
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
            if self.gate is not None:
                await self.gate.wait()
        except BaseException:
            self.in_flight -= 1
            raise
        self.in_flight -= 1
        if self.fail_after is not None and len(self.answered) >= self.fail_after:
            self.failing = True
        if self.failing:
            raise WorkerFailure("m", f"{self.name} is down")

    async def generate(self, request: GenerateRequest) -> GenerateResult:
        await self._enter()
        self.answered.append(request.request_id)
        return await super().generate(request)

    async def score(self, request: ScoreRequest) -> ScoreResult:
        await self._enter()
        self.answered.append(request.request_id)
        return await super().score(request)

    async def close(self) -> None:
        self.closed = True


class HealthCheckedWorker(FlakyWorker):
    """A FlakyWorker with a ``health()`` that fails while it is failing."""

    def __init__(self, name: str, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.health_checks = 0

    async def health(self) -> None:
        self.health_checks += 1
        if self.failing:
            raise WorkerFailure("m", f"{self.name} unhealthy")


class RejectedError(WorkerFailure):
    retryable = False


def ask(request_id: str) -> GenerateRequest:
    return GenerateRequest(prompt="Q", request_id=request_id)


async def until(condition: Any) -> None:
    """Poll ``condition`` (state of test doubles, no event to wait on) for up to a second."""
    async with asyncio.timeout(1.0):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.002)


async def test_balancing_picks_the_least_busy_replica() -> None:
    """With two replicas busy and one idle, new calls keep going to the idle one rather
    than rotating round-robin."""
    slow = [FlakyWorker("a"), FlakyWorker("b")]
    for worker in slow:
        worker.gate = asyncio.Event()
    fast = FlakyWorker("c")
    pool = WorkerPool("m", [*slow, fast])
    held = [asyncio.create_task(pool.generate(ask(f"held{i}"))) for i in range(2)]
    await until(lambda: all(w.in_flight == 1 for w in slow))
    results = [await pool.generate(ask(f"r{i}")) for i in range(3)]
    assert [r.usage.replica for r in results] == ["m#2"] * 3
    for worker in slow:
        assert worker.gate is not None
        worker.gate.set()
    assert sorted(r.usage.replica or "" for r in await asyncio.gather(*held)) == ["m#0", "m#1"]
    await pool.close()


async def test_concurrency_limit_holds_and_calls_queue_at_the_pool() -> None:
    """No replica ever runs more than max_concurrency calls; the rest wait and all finish."""
    replicas = [FlakyWorker("a", delay=0.01), FlakyWorker("b", delay=0.01)]
    pool = WorkerPool("m", replicas, max_concurrency=2)
    results = await asyncio.gather(*(pool.generate(ask(str(i))) for i in range(12)))
    assert len(results) == 12
    assert [w.peak_in_flight for w in replicas] == [2, 2]
    assert sum(len(w.answered) for w in replicas) == 12
    await pool.close()


async def test_failover_retries_on_another_replica_and_is_traced() -> None:
    """A failing replica's call is retried on the other one; the result and the trace say
    which replica answered, after how many attempts and fail-overs."""
    down, up = FlakyWorker("a"), FlakyWorker("b", seconds_per_call=0.5)
    down.failing = True
    pool = WorkerPool("m", [down, up], eject_after=None)
    trace = Trace(query_id="q")
    calls = CallRecorder({"m": pool}, Usage(), trace)
    result = await calls.generate("m", ask("x"))
    assert result.completions[0].text == "b:x"
    assert (result.usage.replica, result.usage.attempts, result.usage.failovers) == ("m#1", 2, 1)
    assert result.usage.seconds >= 0.5
    record = trace.generations[0]
    assert (record.replica, record.attempts, record.failovers) == ("m#1", 2, 1)
    stats = pool.stats()
    assert (stats.requests, stats.succeeded, stats.retries, stats.failovers) == (1, 1, 1, 1)
    assert [(r.failures, r.successes) for r in stats.replicas] == [(1, 0), (0, 1)]
    assert stats.replicas[1].latency_total_s > 0
    await pool.close()


async def test_all_attempts_failing_names_every_failure() -> None:
    """When every try fails the call raises one WorkerFailure listing each replica's error."""
    replicas = [FlakyWorker("a"), FlakyWorker("b")]
    for worker in replicas:
        worker.failing = True
    pool = WorkerPool("m", replicas, max_attempts=3, eject_after=None)
    with pytest.raises(WorkerFailure, match=r"all 3 attempts failed: m#0: a is down; m#1: b is"):
        await pool.generate(ask("x"))
    assert (pool.stats().failed, pool.stats().retries) == (1, 2)
    await pool.close()


async def test_request_errors_are_not_retried() -> None:
    """A non-retryable WorkerFailure or any other exception is raised at once, with no
    retry and no failure charged to the replica."""

    class Rejecting(FlakyWorker):
        reject_with = "rejected"

        async def generate(self, request: GenerateRequest) -> GenerateResult:
            if self.reject_with == "rejected":
                raise RejectedError("m", "HTTP 400: prompt too long")
            raise ValueError("bad prompt")

    replicas = [Rejecting("a"), Rejecting("b")]
    pool = WorkerPool("m", replicas, eject_after=1)
    with pytest.raises(RejectedError):
        await pool.generate(ask("x"))
    for worker in replicas:
        worker.reject_with = "value"
    with pytest.raises(ValueError, match="bad prompt"):
        await pool.generate(ask("y"))
    stats = pool.stats()
    assert (stats.retries, stats.ejections, stats.failed) == (0, 0, 2)
    assert [r.failures for r in stats.replicas] == [0, 0]
    await pool.close()


async def test_ejection_after_consecutive_failures_and_readmission_by_health() -> None:
    """eject_after consecutive failures eject a replica: it gets no more calls until the
    probe finds its health() passing again and readmits it."""
    sick, well = HealthCheckedWorker("a"), FlakyWorker("b")
    sick.failing = True
    pool = WorkerPool("m", [sick, well], eject_after=2, probe_interval_s=0.01)
    for i in range(2):
        await pool.generate(ask(f"f{i}"))
    assert pool.stats().replicas[0].ejected
    assert pool.stats().ejections == 1
    for i in range(4):
        assert (await pool.generate(ask(f"e{i}"))).usage.replica == "m#1"
    await until(lambda: sick.health_checks >= 2)
    assert pool.stats().replicas[0].ejected
    sick.failing = False
    await until(lambda: not pool.stats().replicas[0].ejected)
    assert pool.stats().readmissions == 1
    replicas = {(await pool.generate(ask(f"r{i}"))).usage.replica for i in range(4)}
    assert replicas == {"m#0", "m#1"}
    await pool.close()


async def test_probe_without_health_uses_a_tiny_generate() -> None:
    """A replica with no health() is probed with a one-token generate."""
    sick, well = FlakyWorker("a"), FlakyWorker("b")
    sick.failing = True
    pool = WorkerPool("m", [sick, well], eject_after=1, probe_interval_s=0.01)
    await pool.generate(ask("x"))
    assert pool.stats().replicas[0].ejected
    sick.failing = False
    await until(lambda: not pool.stats().replicas[0].ejected)
    probe = sick.requests[-1]
    assert isinstance(probe, GenerateRequest)
    assert probe.params.max_tokens == 1
    await pool.close()


async def test_every_replica_ejected_still_serves() -> None:
    """With every replica ejected the pool still routes to them instead of refusing."""
    worker = FlakyWorker("a")
    worker.failing = True
    pool = WorkerPool("m", [worker], eject_after=1, max_attempts=1, probe_interval_s=10)
    with pytest.raises(WorkerFailure):
        await pool.generate(ask("x"))
    assert pool.stats().replicas[0].ejected
    worker.failing = False
    assert (await pool.generate(ask("y"))).completions[0].text == "a:y"
    await pool.close()


async def test_request_timeout_fails_over() -> None:
    """A try running past request_timeout_s is abandoned, charged to its replica as a
    timeout, and retried elsewhere."""
    hung, fast = FlakyWorker("a", delay=5.0), FlakyWorker("b")
    pool = WorkerPool("m", [hung, fast], request_timeout_s=0.05)
    result = await pool.generate(ask("x"))
    assert (result.usage.replica, result.usage.failovers) == ("m#1", 1)
    assert pool.stats().replicas[0].failures == 1
    assert hung.in_flight == 0  # the abandoned try was cancelled
    await pool.close()


async def test_deadline_bounds_the_whole_call() -> None:
    """The overall deadline ends a call however many tries are left, and is not charged
    to the replica; it also bounds waiting for a free slot."""
    replicas = [FlakyWorker("a", delay=5.0), FlakyWorker("b", delay=5.0)]
    pool = WorkerPool("m", replicas, deadline_s=0.05, max_concurrency=1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(WorkerFailure, match=r"deadline of 0.05s exceeded on a replica"):
        await pool.generate(ask("x"))
    assert loop.time() - started < 1.0
    assert pool.stats().replicas[0].failures == 0
    pool.deadline_s = None  # read per call: these two hold both slots without a deadline
    busy = [asyncio.create_task(pool.generate(ask(f"b{i}"))) for i in range(2)]
    await until(lambda: all(w.in_flight == 1 for w in replicas))
    pool.deadline_s = 0.05
    with pytest.raises(WorkerFailure, match="exceeded waiting for a free replica"):
        await pool.generate(ask("late"))
    for task in busy:
        task.cancel()
    await asyncio.gather(*busy, return_exceptions=True)
    await pool.close()


async def test_close_drains_in_flight_calls_and_refuses_new_ones() -> None:
    """close() lets in-flight calls finish, refuses calls made after it began, then closes
    every replica."""
    replicas = [FlakyWorker("a", delay=0.05), FlakyWorker("b", delay=0.05)]
    pool = WorkerPool("m", replicas)
    running = [asyncio.create_task(pool.generate(ask(str(i)))) for i in range(4)]
    await until(lambda: sum(w.in_flight for w in replicas) == 4)
    closing = asyncio.create_task(pool.close())
    await asyncio.sleep(0)
    with pytest.raises(WorkerFailure, match="closed"):
        await pool.generate(ask("late"))
    results = await asyncio.gather(*running)
    await closing
    assert len(results) == 4
    assert all(w.closed for w in replicas)
    await pool.close()  # idempotent


async def test_close_fails_calls_still_running_at_the_drain_timeout() -> None:
    """A call still running when the drain timeout ends fails with a clear error."""
    stuck = FlakyWorker("a")
    stuck.gate = asyncio.Event()
    pool = WorkerPool("m", [stuck], drain_timeout_s=0.05)
    call = asyncio.create_task(pool.generate(ask("x")))
    waiting = asyncio.create_task(pool.generate(ask("y")))
    await until(lambda: stuck.in_flight == 2)
    await pool.close()
    for task in (call, waiting):
        with pytest.raises(WorkerFailure, match=r"pool closed before this request finished"):
            await task
    assert stuck.closed
    assert stuck.in_flight == 0


async def test_caller_cancellation_propagates_and_frees_the_slot() -> None:
    """Cancelling a caller cancels its try and frees the replica's slot."""
    worker = FlakyWorker("a")
    worker.gate = asyncio.Event()
    pool = WorkerPool("m", [worker], max_concurrency=1)
    call = asyncio.create_task(pool.generate(ask("x")))
    await until(lambda: worker.in_flight == 1)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert pool.stats().replicas[0].in_flight == 0
    assert pool.stats().replicas[0].failures == 0
    worker.gate.set()
    assert (await pool.generate(ask("y"))).completions[0].text == "a:y"
    await pool.close()


async def test_no_call_lost_or_duplicated_when_a_replica_dies_mid_run() -> None:
    """50 concurrent calls while one of three replicas starts failing midway: every call
    is answered exactly once, by exactly one replica."""
    replicas = [FlakyWorker(name, delay=0.002) for name in "abc"]
    replicas[1].fail_after = 5
    pool = WorkerPool("m", replicas, max_concurrency=4, eject_after=2, probe_interval_s=10)
    ids = [f"q{i}" for i in range(50)]
    results = await asyncio.gather(*(pool.generate(ask(i)) for i in ids))
    texts = [r.completions[0].text.split(":")[1] for r in results]
    assert texts == ids
    answered = [i for w in replicas for i in w.answered]
    assert sorted(answered) == sorted(ids)
    stats = pool.stats()
    assert (stats.requests, stats.succeeded, stats.failed) == (50, 50, 0)
    assert stats.replicas[1].ejected
    assert stats.failovers >= 1
    assert sum(r.usage.failovers for r in results) == stats.failovers
    await pool.close()


async def test_score_goes_through_the_pool() -> None:
    """score is balanced and retried like generate."""
    down, up = FlakyWorker("a"), FlakyWorker("b")
    down.failing = True
    pool = WorkerPool("m", [down, up])
    result = await pool.score(ScoreRequest(prompt="Q", continuations=("a b",)))
    assert result.scores[0].token_logprobs == (-0.5, -0.5)
    assert (result.usage.replica, result.usage.attempts) == ("m#1", 2)
    await pool.close()


async def test_config_builds_pools_of_mixed_replicas(monkeypatch: pytest.MonkeyPatch) -> None:
    """A YAML-like dict of kind pool (scripted and openai replicas) and of kind openai
    parses and builds without touching the network."""
    monkeypatch.setenv("TEST_VLLM_KEY", "sk-1")
    adapter: TypeAdapter[WorkerConfig] = TypeAdapter(WorkerConfig)
    config = adapter.validate_python(
        {
            "kind": "pool",
            "replicas": [
                {"kind": "scripted", "responses": ["The answer is 4."]},
                {
                    "kind": "openai",
                    "base_url": "http://127.0.0.1:8001/v1",
                    "model": "qwen",
                    "api_key_env": "TEST_VLLM_KEY",
                    "timeout_s": 30,
                },
            ],
            "max_concurrency": 8,
            "max_attempts": 2,
            "request_timeout_s": 60,
            "deadline_s": 120,
            "eject_after": 2,
        }
    )
    assert isinstance(config, PoolConfig)
    assert isinstance(config.replicas[1], OpenAIWorkerConfig)
    pool = build_worker("small", config)
    assert isinstance(pool, WorkerPool)
    assert pool.model_name == "small"
    assert (pool.max_attempts, pool.eject_after) == (2, 2)
    stats = pool.stats()
    assert [r.name for r in stats.replicas] == ["small#0", "small#1"]
    remote = pool._replicas[1].worker
    assert isinstance(remote, OpenAIWorker)
    assert (remote.base_url, remote.served_model, remote.model_name) == (
        "http://127.0.0.1:8001",
        "qwen",
        "small",
    )
    await pool.close()
    monkeypatch.delenv("TEST_VLLM_KEY")
    single = adapter.validate_python(
        {"kind": "openai", "base_url": "http://h:1", "model": "q", "api_key_env": "TEST_VLLM_KEY"}
    )
    with pytest.raises(ValueError, match="TEST_VLLM_KEY"):
        build_worker("small", single)
    with pytest.raises(Exception, match="replicas"):
        adapter.validate_python({"kind": "pool", "replicas": []})


def test_pool_survives_successive_event_loops() -> None:
    """A pool used from one asyncio.run per query (Orchestrator.answer_sync) keeps working:
    calls wait for slots, and a replica ejected under one loop is probed under the next."""
    replicas = [FlakyWorker("a", delay=0.002), FlakyWorker("b", delay=0.002)]
    replicas[0].failing = True
    pool = WorkerPool("m", replicas, max_concurrency=1, eject_after=1, probe_interval_s=0.01)

    async def burst(tag: str) -> list[GenerateResult]:
        return await asyncio.gather(*(pool.generate(ask(f"{tag}{i}")) for i in range(4)))

    assert len(asyncio.run(burst("x"))) == 4
    assert pool.stats().replicas[0].ejected
    replicas[0].failing = False

    async def readmitted() -> None:
        await burst("y")  # the first call under a new loop restarts the probe
        await until(lambda: not pool.stats().replicas[0].ejected)

    asyncio.run(readmitted())
    asyncio.run(pool.close())
    assert all(w.closed for w in replicas)
