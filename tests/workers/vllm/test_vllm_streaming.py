"""``SampleStream`` without an engine: scripted cumulative outputs (shaped as vLLM's
``RequestOutput``) fed on a ``LoopThread``, as the worker feeds them from its engine loop,
and read on the test's loop. The real engine's streaming is tested in test_vllm_worker."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence
from types import SimpleNamespace
from typing import Any

import pytest

from workers.base import TokenChunk
from workers.errors import WorkerFailure
from workers.streaming import close_stream
from workers.vllm.engine_thread import LoopThread
from workers.vllm.streaming import SampleStream

PIECES = {1: "Hel", 2: "lo", 3: ".", 4: " Bye", 5: "!"}


def output(ids: Sequence[int], text: str, reason: str | None = None) -> Any:
    """A cumulative output of one sample: tokens ``ids`` (texts from PIECES) so far, the
    text vLLM shows for them; finished when ``reason`` is given."""
    logprobs = [{t: SimpleNamespace(logprob=-0.5 * t, decoded_token=PIECES[t])} for t in ids]
    choice = SimpleNamespace(
        text=text,
        token_ids=list(ids),
        logprobs=logprobs,
        finish_reason=reason,
        stop_reason="." if reason == "stop" else None,
    )
    return SimpleNamespace(request_id="r", finished=reason is not None, outputs=[choice])


@pytest.fixture
def engine_loop() -> Iterator[LoopThread]:
    runner = LoopThread("test-engine-loop")
    yield runner
    runner.stop()


async def read(stream: SampleStream, run: Any) -> list[TokenChunk]:
    return [chunk async for chunk in stream.chunks(run)]


async def test_outputs_from_the_engine_loop_become_chunks_and_completions(
    engine_loop: LoopThread,
) -> None:
    """Two samples fed from another thread: each sample's chunks carry its new tokens and
    join to its final text, text that may start a stop string is held back, and the
    completions are read as ``generate`` reads them (the stop string's token trimmed)."""
    stream = SampleStream("m", 2, stops=(".", "lo?"))

    async def feed() -> None:
        assert threading.current_thread() is engine_loop.thread
        stream.take(0, output([1], "Hel"))
        stream.take(1, output([1, 2], "Hello"))
        stream.take(0, output([1, 2], "Hello"))
        stream.take(0, output([1, 2, 3], "Hello", reason="stop"))
        stream.take(1, output([1, 2, 5], "Hello!", reason="length"))

    chunks = await read(stream, asyncio.wrap_future(engine_loop.submit(feed())))
    zero, one = ([c for c in chunks if c.index == i] for i in (0, 1))
    # "l" and "lo" may start "lo?": held back until the next text shows they do not
    assert [(c.text, c.token_ids) for c in zero] == [("He", (1,)), ("l", (2,)), ("lo", (3,))]
    assert [(c.text, c.token_ids) for c in one] == [("Hel", (1, 2)), ("lo!", (5,))]
    assert one[0].logprobs == (-0.5, -1.0)
    first, second = stream.completions()
    assert (first.text, first.token_ids, first.finish_reason) == ("Hello", (1, 2), "stop")
    assert first.logprobs == (-0.5, -1.0)
    assert (second.text, second.token_ids, second.finish_reason) == ("Hello!", (1, 2, 5), "length")


async def test_leaving_the_chunks_early_cancels_the_run_on_the_engine_loop(
    engine_loop: LoopThread,
) -> None:
    """Closing the reader after its first chunk cancels the run where it waits (on the
    engine loop), which is how the worker's engine requests get aborted."""
    stream = SampleStream("m", 1, stops=())
    cancelled = threading.Event()

    async def feed() -> None:
        stream.take(0, output([1], "Hel"))
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    chunks = stream.chunks(asyncio.wrap_future(engine_loop.submit(feed())))
    first = await anext(chunks)
    assert first.text == "Hel"
    await close_stream(chunks)
    assert await asyncio.to_thread(cancelled.wait, 5.0)
    with pytest.raises(RuntimeError, match="not finished"):
        stream.completions()


async def test_a_failing_run_is_raised_after_the_chunks_it_made(engine_loop: LoopThread) -> None:
    """The run's failure reaches the reader, after what was streamed before it."""
    stream = SampleStream("m", 1, stops=())

    async def feed() -> None:
        stream.take(0, output([1, 2], "Hello"))
        raise WorkerFailure("m", "the engine died")

    seen: list[str] = []

    async def read_into() -> None:
        async for chunk in stream.chunks(asyncio.wrap_future(engine_loop.submit(feed()))):
            seen.append(chunk.text)

    with pytest.raises(WorkerFailure, match="the engine died"):
        await read_into()
    assert seen == ["Hello"]


async def test_an_output_that_did_not_finish_cleanly_fails_the_run(
    engine_loop: LoopThread,
) -> None:
    """An aborted request's last output is a ``WorkerFailure`` naming the model, raised on
    the engine loop (so the rest of the call's requests end too)."""
    stream = SampleStream("m", 1, stops=())

    async def feed() -> None:
        stream.take(0, output([1], "Hel", reason="abort"))

    with pytest.raises(WorkerFailure, match="ended with abort"):
        await read(stream, asyncio.wrap_future(engine_loop.submit(feed())))
