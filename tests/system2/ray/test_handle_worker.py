"""The handle-to-seam adapter on a real one-node Ray cluster: calls, errors, replica
names in the usage, cancellation, and a replica killed mid-call."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest

ray = pytest.importorskip("ray")
serve = pytest.importorskip("ray.serve")

from system2.assembly import build_worker  # noqa: E402
from system2.ray.config import RayClusterConfig, RayWorkerConfig  # noqa: E402
from system2.ray.deploy import replica_actor_name  # noqa: E402
from system2.ray.handle_worker import RayHandleWorker  # noqa: E402
from system2.ray.replica import DEPLOYMENT_NAME, ModelReplica  # noqa: E402
from workers.base import (  # noqa: E402
    GenerateRequest,
    GenerateResult,
    ScoreRequest,
    TokenChunk,
    Worker,
)
from workers.errors import UnsupportedRequest, WorkerFailure  # noqa: E402
from workers.scripted import ScriptedWorker, cycle_texts  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_node")

LONG = " ".join(["word"] * 40)


def _scripted(replicas: int = 1, **options: Any) -> RayWorkerConfig:
    return RayWorkerConfig.model_validate(
        {
            "replica": {"kind": "scripted", "responses": ["The answer is 4."]},
            "num_replicas": replicas,
            "num_cpus": 0.25,
            **options,
        }
    )


def _failing(request: GenerateRequest, index: int) -> str:
    raise WorkerFailure("m", "the engine is on fire")


def _deploy(app: str, make_worker: Any, *, replicas: int = 1, ongoing: int = 8) -> Any:
    deployment = serve.deployment(name=DEPLOYMENT_NAME)(ModelReplica).options(
        num_replicas=replicas,
        max_ongoing_requests=ongoing,
        ray_actor_options={"num_cpus": 0.25},
    )
    return serve.run(deployment.bind("m", make_worker), name=app, route_prefix=None)


@pytest.fixture
def scripted() -> Iterator[Worker]:
    worker = build_worker("m", _scripted(), cluster=RayClusterConfig())
    yield worker
    asyncio.run(worker.close())


async def test_generate_score_and_stream_through_the_handle(scripted: Worker) -> None:
    """Calls answer as the hosted backend does; the usage names the Serve replica."""
    result = await scripted.generate(GenerateRequest(prompt="2+2?"))
    assert result.model == "m"
    assert result.completions[0].text == "The answer is 4."
    assert result.usage.replica is not None
    assert result.usage.replica.startswith("ray:system2-m/")
    assert result.usage.attempts == 1
    scores = await scripted.score(ScoreRequest(prompt="x", continuations=("a b",)))
    assert scores.scores[0].token_logprobs == (-0.5, -0.5)
    items = [item async for item in scripted.generate_stream(GenerateRequest(prompt="2+2?"))]
    assert "".join(i.text for i in items if isinstance(i, TokenChunk)) == "The answer is 4."
    assert isinstance(items[-1], GenerateResult)
    assert scripted.streams_tokens
    assert not scripted.supports_guidance


async def test_unsupported_requests_cross_unchanged(scripted: Worker) -> None:
    """What the backend cannot do is refused as in-process, and not retried."""
    with pytest.raises(UnsupportedRequest, match="cannot decode token ids"):
        await scripted.decode_tokens([1, 2])
    with pytest.raises(UnsupportedRequest, match="no token verifier"):
        scripted.token_step_verifier()


async def test_worker_failures_are_retried_then_raised() -> None:
    """A replica's WorkerFailure comes back as one, after max_attempts tries."""
    handle = _deploy("failing", partial(ScriptedWorker, "m", _failing))
    worker = build_worker(
        "m", _scripted(app="failing", deploy=False, max_attempts=2), cluster=RayClusterConfig()
    )
    try:
        with pytest.raises(WorkerFailure, match=r"all 2 attempts failed.*on fire"):
            await worker.generate(GenerateRequest(prompt="x"))
    finally:
        await worker.close()
        await RayHandleWorker.attach("m", handle, owned_app="failing").close()


async def test_cancelling_a_call_cancels_it_in_the_replica() -> None:
    """A cancelled call (or a stream closed early) frees the replica's only slot at once."""
    slow = partial(ScriptedWorker, "m", cycle_texts([LONG]), token_delay_s=0.25)
    handle = _deploy("slow", slow, ongoing=1)
    worker = RayHandleWorker.attach("m", handle, owned_app="slow")
    try:
        call = asyncio.ensure_future(worker.generate(GenerateRequest(prompt="x")))
        await asyncio.sleep(1.0)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        started = time.perf_counter()
        await worker.score(ScoreRequest(prompt="x", continuations=("a",)))
        assert time.perf_counter() - started < 5.0  # the 10 s call no longer holds the slot

        stream = worker.generate_stream(GenerateRequest(prompt="x"))
        first = await anext(stream)
        assert isinstance(first, TokenChunk)
        await stream.aclose()  # type: ignore[attr-defined]
        started = time.perf_counter()
        await worker.score(ScoreRequest(prompt="x", continuations=("a",)))
        assert time.perf_counter() - started < 5.0
    finally:
        await worker.close()


async def test_a_killed_replica_is_retried_on_another_and_replaced() -> None:
    """Calls in flight on a replica killed mid-call are answered by the other one (the
    usage counts two attempts), and Serve starts a replacement."""
    slow = RayWorkerConfig.model_validate(
        {"replica": {"kind": "scripted", "responses": ["a b c d"]}, "num_replicas": 2}
    )
    # Each call takes 4 s and a replica takes at most 4 at once, so the 8 calls fill both
    # replicas and the kill, 2 s after they are sent, finds 4 in flight on the victim (with
    # room for 8 per replica, the router could put all 8 on the survivor).
    words = partial(ScriptedWorker, "m", cycle_texts(["a b c d"]), token_delay_s=1.0)
    _deploy("kill", words, replicas=2, ongoing=4)
    worker = build_worker(
        "m", slow.model_copy(update={"app": "kill", "deploy": False}), cluster=RayClusterConfig()
    )
    try:
        first = await worker.generate(GenerateRequest(prompt="x"))
        assert first.usage.replica is not None
        victim = first.usage.replica.rsplit("/", 1)[1]
        calls = [
            asyncio.ensure_future(worker.generate(GenerateRequest(prompt=str(i)))) for i in range(8)
        ]
        await asyncio.sleep(2.0)
        ray.kill(ray.get_actor(replica_actor_name("kill", victim), namespace="serve"))
        results = await asyncio.gather(*calls)
        assert all(r.completions[0].text == "a b c d" for r in results)
        retried = [r for r in results if r.usage.attempts > 1]
        assert retried, "no call was in flight on the killed replica"
        assert all(victim not in (r.usage.replica or "") for r in retried)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            replicas = serve.status().applications["kill"].deployments[DEPLOYMENT_NAME]
            if replicas.replica_states.get("RUNNING") == 2:
                break
            await asyncio.sleep(0.5)
        assert replicas.replica_states.get("RUNNING") == 2
    finally:
        await worker.close()
        serve.delete("kill")
