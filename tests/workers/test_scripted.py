"""``ScriptedWorker``'s stream: word by word, paced by ``token_delay_s``, cancellable."""

from __future__ import annotations

import asyncio
import time

from workers.base import GenerateRequest, GenerateResult, SamplingParams, TokenChunk
from workers.scripted import ScriptedWorker, cycle_texts
from workers.streaming import closing


def _request(n: int = 1, max_tokens: int = 256) -> GenerateRequest:
    return GenerateRequest(prompt="q", params=SamplingParams(n=n, max_tokens=max_tokens))


async def test_a_stream_goes_word_by_word_and_ends_with_generates_result() -> None:
    """Each word is a chunk of its own (one token), the chunks join to each text, and the
    result is the one ``generate`` gives."""
    texts = ["The answer  is 4.\n", "No"]
    worker = ScriptedWorker("m", lambda request, i: texts[i])
    items = [item async for item in worker.generate_stream(_request(n=2))]
    chunks = [i for i in items if isinstance(i, TokenChunk)]
    assert [c.text for c in chunks if c.index == 0] == ["The", " answer", "  is", " 4.\n"]
    assert [c.token_ids for c in chunks if c.index == 0] == [(0,), (1,), (2,), (3,)]
    assert [c.text for c in chunks if c.index == 1] == ["No"]
    result = items[-1]
    assert isinstance(result, GenerateResult)
    plain = await worker.generate(_request(n=2))
    assert result.completions == plain.completions
    assert result.usage.completion_tokens == plain.usage.completion_tokens == 5
    assert worker.streams_tokens


async def test_token_delay_paces_the_stream_and_the_call() -> None:
    """With ``token_delay_s`` the first word arrives well before the last, and ``generate``
    takes as long as the longest sample's words."""
    worker = ScriptedWorker("m", cycle_texts(["a b c d e f"]), token_delay_s=0.03)
    started = time.perf_counter()
    arrived = [time.perf_counter() - started async for _ in worker.generate_stream(_request())]
    assert arrived[-1] >= 6 * 0.03 - 0.01
    assert arrived[0] < arrived[-1] - 3 * 0.03
    started = time.perf_counter()
    await worker.generate(_request())
    assert time.perf_counter() - started >= 6 * 0.03 - 0.01


async def test_closing_a_stream_stops_it() -> None:
    """A stream closed after two words makes no more."""
    worker = ScriptedWorker("m", cycle_texts(["a b c d e f g h"]), token_delay_s=0.01)
    seen = []
    async with closing(worker.generate_stream(_request())) as stream:
        async for item in stream:
            seen.append(item)
            if len(seen) == 2:
                break
    assert len(seen) == 2


class RewrittenGenerate(ScriptedWorker):
    """A test double whose ``generate`` is its own (here: it adds a word)."""

    async def generate(self, request: GenerateRequest) -> GenerateResult:
        result = await super().generate(request)
        (only,) = result.completions
        return result.model_copy(
            update={"completions": (only.model_copy(update={"text": only.text + " more"}),)}
        )


async def test_a_subclass_with_its_own_generate_streams_through_it() -> None:
    """Rewriting ``generate`` is honoured by the stream: the whole text once, then its
    result (the seam's default)."""
    worker = RewrittenGenerate("m", cycle_texts(["one two"]))
    items = [item async for item in worker.generate_stream(_request())]
    assert isinstance(items[0], TokenChunk)
    assert items[0].text == "one two more"
    assert len(items) == 2
    assert not worker.streams_tokens


async def test_max_tokens_cuts_the_stream_too() -> None:
    """A text over ``max_tokens`` words streams only those words (finish ``length``)."""
    worker = ScriptedWorker("m", cycle_texts(["a b c d"]))
    items = [item async for item in worker.generate_stream(_request(max_tokens=2))]
    assert "".join(i.text for i in items if isinstance(i, TokenChunk)) == "a b"
    result = items[-1]
    assert isinstance(result, GenerateResult)
    assert result.completions[0].finish_reason == "length"


async def test_cancelling_the_reader_cancels_the_paced_stream() -> None:
    """The task reading a paced stream can be cancelled between words."""
    worker = ScriptedWorker("m", cycle_texts(["a b c d e f g h"]), token_delay_s=0.05)

    async def read() -> int:
        return len([item async for item in worker.generate_stream(_request())])

    task = asyncio.create_task(read())
    await asyncio.sleep(0.08)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()
