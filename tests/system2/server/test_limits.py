"""Limits and shutdown: body size, the admission queue (429 + Retry-After, 503 on a queue
timeout), and the drain (503 and /ready false for new requests, in-flight ones finish)."""

from __future__ import annotations

import asyncio
import doctest
from types import ModuleType

import pytest
import structlog.testing

from system2.server import admission as admission_module
from system2.server import app as app_module
from system2.server.admission import Admission, Draining, Overloaded, QueueTimeout
from system2.server.app import drain
from tests.system2.server.conftest import (
    AppFactory,
    SlowWorker,
    assert_openai_error,
    chat,
    client_for,
    slow_workers,
)


async def test_a_body_over_the_limit_is_413(app_factory: AppFactory) -> None:
    """A body larger than server.max_body_bytes is refused with 413 (declared or not)."""
    big = chat("greedy", question="x " * 2000)
    async with client_for(app_factory(max_body_bytes=1024)) as client:
        error = assert_openai_error(await client.post("/v1/chat/completions", json=big), 413)
        assert error["code"] == "body_too_large"

        async def chunks():  # no Content-Length: counted as it streams in
            for _ in range(5):
                yield b" " * 400

        response = await client.post("/v1/chat/completions", content=chunks())
        assert_openai_error(response, 413)


async def test_full_queue_is_429_with_retry_after(app_factory: AppFactory) -> None:
    """With every slot running and the line full, a request is refused at once with 429
    and Retry-After."""
    app = app_factory(max_running=1, max_waiting=0, retry_after_s=7)
    lease = await app.state.system2.admission.admit(1.0)  # hold the only slot
    async with client_for(app) as client:
        response = await client.post("/v1/chat/completions", json=chat("greedy"))
        error = assert_openai_error(response, 429)
        assert error["code"] == "queue_full"
        assert response.headers["retry-after"] == "7"
        lease.release()
        assert (await client.post("/v1/chat/completions", json=chat("greedy"))).status_code == 200


async def test_waiting_past_the_request_timeout_is_503(app_factory: AppFactory) -> None:
    """A request that waits in line longer than request_timeout_s gets 503 queue_timeout."""
    app = app_factory(max_running=1, max_waiting=1, request_timeout_s=0.1)
    lease = await app.state.system2.admission.admit(1.0)
    async with client_for(app) as client:
        response = await client.post("/v1/chat/completions", json=chat("greedy"))
    assert assert_openai_error(response, 503)["code"] == "queue_timeout"
    assert "retry-after" in response.headers
    lease.release()


async def test_a_waiting_request_runs_when_a_slot_frees(app_factory: AppFactory) -> None:
    """A request in line is answered once the running one ends."""
    app = app_factory(max_running=1, max_waiting=1)
    lease = await app.state.system2.admission.admit(1.0)
    async with client_for(app) as client:
        waiting = asyncio.create_task(client.post("/v1/chat/completions", json=chat("greedy")))
        await asyncio.sleep(0.05)
        assert app.state.system2.admission.waiting == 1
        lease.release()
        assert (await waiting).status_code == 200


async def test_draining_refuses_new_requests_and_finishes_admitted_ones(
    app_factory: AppFactory,
) -> None:
    """After the drain starts: /ready is 503 and false, new requests get 503 draining,
    /health stays up, and the query already running completes normally."""
    workers = slow_workers(0.3)
    app = app_factory(workers=workers)
    state = app.state.system2
    m = workers["m"]
    assert isinstance(m, SlowWorker)
    async with client_for(app) as client:
        running = asyncio.create_task(client.post("/v1/chat/completions", json=chat("greedy")))
        await m.in_flight.wait()
        drained = asyncio.create_task(drain(state, timeout_s=5.0))
        await asyncio.sleep(0)
        ready = await client.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["ready"] is False
        refused = await client.post("/v1/chat/completions", json=chat("greedy"))
        assert assert_openai_error(refused, 503)["code"] == "draining"
        assert (await client.get("/health")).status_code == 200
        assert (await running).status_code == 200
        assert await drained is True
    assert m.cancelled == 0


async def test_drain_gives_up_after_its_timeout(app_factory: AppFactory) -> None:
    """A query that outlasts the drain timeout leaves drain() returning False."""
    workers = slow_workers(5.0)
    app = app_factory(workers=workers)
    m = workers["m"]
    assert isinstance(m, SlowWorker)
    async with client_for(app) as client:
        running = asyncio.create_task(client.post("/v1/chat/completions", json=chat("greedy")))
        await m.in_flight.wait()
        assert await drain(app.state.system2, timeout_s=0.1) is False
        running.cancel()


async def test_app_shutdown_drains_then_closes(app_factory: AppFactory) -> None:
    """The app's lifespan end drains admission (nothing new is admitted afterwards)."""
    app = app_factory()
    async with app.router.lifespan_context(app):
        assert not app.state.system2.admission.draining
    assert app.state.system2.admission.draining


async def test_admission_counts_and_refusals() -> None:
    """The admission queue alone: slots, the line, refusals, timeouts and the drain."""
    admission = Admission(max_running=1, max_waiting=1)
    first = await admission.admit(1.0)
    second = asyncio.create_task(admission.admit(1.0))
    await asyncio.sleep(0)
    assert (admission.running, admission.waiting) == (1, 1)
    with pytest.raises(Overloaded):
        await admission.admit(1.0)
    first.release()
    first.release()  # idempotent
    lease = await second
    assert (admission.running, admission.waiting) == (1, 0)
    with pytest.raises(QueueTimeout):
        await admission.admit(0.01)
    admission.begin_drain()
    with pytest.raises(Draining):
        await admission.admit(1.0)
    lease.release()
    assert admission.idle
    assert await admission.wait_idle(0.1)


@pytest.mark.parametrize("module", [admission_module, app_module], ids=["admission", "app"])
def test_module_examples_run(module: ModuleType) -> None:
    """The ``Example:`` blocks of the server's module docstrings run as shown."""
    with structlog.testing.capture_logs():
        assert doctest.testmod(module).failed == 0
