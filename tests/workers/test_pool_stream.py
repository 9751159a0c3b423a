"""``WorkerPool.generate_stream``: the chosen replica's stream, fail-over before its first
item and, by replaying the call elsewhere, after it; the slot held until the stream ends,
closing passed through."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from workers.base import GenerateRequest, GenerateResult, SamplingParams, StreamItem, TokenChunk
from workers.errors import WorkerFailure
from workers.pool import WorkerPool
from workers.scripted import ScriptedWorker, cycle_texts
from workers.stream_resume import StreamDiverged
from workers.streaming import closing


class StreamWorker(ScriptedWorker):
    """Test double: a scripted stream (one word per ``token_delay_s``) that can fail before
    its first item (``fail_first``) or after ``fail_after`` chunks, and records when its
    stream was closed."""

    def __init__(self, text: str, *, token_delay_s: float = 0.0) -> None:
        super().__init__("m", cycle_texts([text]), token_delay_s=token_delay_s)
        self.fail_first = False
        self.fail_after: int | None = None
        self.opened = self.closed = 0

    async def generate_stream(self, request: GenerateRequest) -> AsyncIterator[StreamItem]:
        self.opened += 1
        try:
            if self.fail_first:
                raise WorkerFailure("m", "down before the first token")
            sent = 0
            async for item in super().generate_stream(request):
                if self.fail_after is not None and sent == self.fail_after:
                    raise WorkerFailure("m", "broke mid-stream")
                sent += 1
                yield item
        finally:
            self.closed += 1


REQUEST = GenerateRequest(prompt="Q", params=SamplingParams(max_tokens=32))


async def _texts(pool: WorkerPool) -> tuple[str, GenerateResult]:
    items = [item async for item in pool.generate_stream(REQUEST)]
    result = items[-1]
    assert isinstance(result, GenerateResult)
    return "".join(i.text for i in items if isinstance(i, TokenChunk)), result


async def test_a_replica_failing_before_its_first_token_fails_over() -> None:
    """The stream moves to the other replica; usage names it and counts the fail-over."""
    down, up = StreamWorker("from a"), StreamWorker("from b")
    down.fail_first = True
    pool = WorkerPool("m", [down, up])
    text, result = await _texts(pool)
    assert text == "from b"
    assert (result.usage.replica, result.usage.attempts, result.usage.failovers) == ("m#1", 2, 1)
    assert result.model == "m"
    assert pool.stats().replicas[0].failures == 1
    assert (down.closed, up.closed) == (1, 1)
    assert pool.streams_tokens
    await pool.close()


async def test_a_failure_mid_stream_continues_on_another_replica() -> None:
    """Once a chunk has gone out, a replica failure (counted against it) starts the call
    again on another replica, which passes on only what comes after: the reader sees one
    unbroken text, and usage counts the restart as an attempt and a fail-over."""
    broken, spare = StreamWorker("one two three"), StreamWorker("one two three")
    broken.fail_after = 1
    pool = WorkerPool("m", [broken, spare], eject_after=1)
    items = [item async for item in pool.generate_stream(REQUEST)]
    chunks = [i.text for i in items if isinstance(i, TokenChunk)]
    result = items[-1]
    assert isinstance(result, GenerateResult)
    assert chunks[0] == "one"
    assert "".join(chunks) == result.completions[0].text == "one two three"
    assert (result.usage.replica, result.usage.attempts, result.usage.failovers) == ("m#1", 2, 1)
    stats = pool.stats()
    assert (stats.succeeded, stats.failed, stats.ejections) == (1, 0, 1)
    assert stats.replicas[0].in_flight == stats.replicas[1].in_flight == 0
    assert (broken.closed, spare.closed) == (1, 1)
    await pool.close()


async def test_a_replay_that_diverges_fails_instead_of_splicing() -> None:
    """A replica that would continue with other text than the one already streamed ends
    the call with StreamDiverged; nothing of its text reaches the reader."""
    broken, other = StreamWorker("one two three"), StreamWorker("uno dos tres")
    broken.fail_after = 1
    pool = WorkerPool("m", [broken, other], eject_after=1)
    seen: list[str] = []

    async def read() -> None:
        async for item in pool.generate_stream(REQUEST):
            assert isinstance(item, TokenChunk)
            seen.append(item.text)

    with pytest.raises(StreamDiverged, match="diverged"):
        await read()
    assert seen == ["one"]
    assert pool.stats().failed == 1
    await pool.close()


async def test_mid_stream_restarts_stop_at_max_attempts() -> None:
    """Every replica breaking mid-stream: after the first break the call is started again
    once (max_attempts=2), and that start's tries fail while replaying (on m#1, then m#2):
    the call fails naming the breaks, three streams opened in all."""
    workers = [StreamWorker("one two three") for _ in range(3)]
    for w in workers:
        w.fail_after = 1
    pool = WorkerPool("m", workers, max_attempts=2)
    with pytest.raises(WorkerFailure, match=r"all 2 attempts failed.*broke mid-stream"):
        await _texts(pool)
    assert [w.opened for w in workers] == [1, 1, 1]
    await pool.close()


async def test_the_slot_is_held_until_the_stream_ends_and_closing_passes_through() -> None:
    """With one slot per replica, a stream in progress keeps its replica busy; closing the
    pool's stream closes the replica's and frees the slot (the call counts as neither
    success nor failure)."""
    a, b = StreamWorker("a " * 50, token_delay_s=0.01), StreamWorker("b " * 50)
    pool = WorkerPool("m", [a, b], max_concurrency=1)
    async with closing(pool.generate_stream(REQUEST)) as stream:
        first = await anext(stream)
        assert isinstance(first, TokenChunk)
        assert first.text == "a"
        assert pool.stats().replicas[0].in_flight == 1
        other = await pool.generate(REQUEST)  # the busy replica is skipped
        assert other.usage.replica == "m#1"
    assert a.closed == 1
    stats = pool.stats()
    assert stats.replicas[0].in_flight == 0
    assert (stats.succeeded, stats.failed) == (1, 0)
    await pool.close()


async def test_a_stream_past_the_request_timeout_fails() -> None:
    """request_timeout_s bounds the whole stream, not just its first token; the spent time
    is not spent again on a restart."""
    slow = StreamWorker("a b c d e f g h", token_delay_s=0.05)
    pool = WorkerPool("m", [slow], request_timeout_s=0.12)
    with pytest.raises(WorkerFailure, match="ran past the request timeout"):
        await _texts(pool)
    assert slow.closed == 1
    await pool.close()


async def test_cancelling_the_reader_closes_the_replica_stream() -> None:
    """A reader cancelled mid-stream: the replica's stream is closed, the slot freed."""
    slow = StreamWorker("a " * 100, token_delay_s=0.01)
    pool = WorkerPool("m", [slow])

    async def read() -> None:
        async for _ in pool.generate_stream(REQUEST):
            pass

    task = asyncio.create_task(read())
    await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert slow.closed == 1
    assert pool.stats().replicas[0].in_flight == 0
    await pool.close()
