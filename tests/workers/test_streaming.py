"""The streaming seam's default (``Worker.generate_stream``) and the plumbing the backends
share (``workers.streaming``): stop-safe text deltas, merged streams, collecting."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import pytest

from workers.base import (
    Completion,
    GenerateRequest,
    GenerateResult,
    SamplingParams,
    ScoreRequest,
    ScoreResult,
    TokenChunk,
    Worker,
    WorkerUsage,
)
from workers.errors import WorkerFailure
from workers.streaming import FeedChunks, TextDeltas, closing, collect, merge_streams


class WholeWorker(Worker):
    """A backend with only ``generate``: it gets the seam's default stream."""

    model_name = "whole"

    async def generate(self, request: GenerateRequest) -> GenerateResult:
        completions = tuple(
            Completion(
                text=f"text {i}", token_ids=(i, 9), logprobs=(-1.0, -2.0), finish_reason="stop"
            )
            for i in range(request.params.n)
        )
        usage = WorkerUsage(prompt_tokens=3, completion_tokens=2 * request.params.n)
        return GenerateResult(model=self.model_name, completions=completions, usage=usage)

    async def score(self, request: ScoreRequest) -> ScoreResult:
        raise NotImplementedError


async def test_the_default_stream_yields_each_whole_text_then_the_result() -> None:
    """Without a streaming backend: one chunk per sample (its text, ids, log-probs), then
    exactly the result ``generate`` returns; ``streams_tokens`` says so."""
    worker = WholeWorker()
    request = GenerateRequest(prompt="p", params=SamplingParams(n=2))
    items = [item async for item in worker.generate_stream(request)]
    assert items[:2] == [
        TokenChunk(index=0, text="text 0", token_ids=(0, 9), logprobs=(-1.0, -2.0)),
        TokenChunk(index=1, text="text 1", token_ids=(1, 9), logprobs=(-1.0, -2.0)),
    ]
    assert items[2] == await worker.generate(request)
    assert not worker.streams_tokens
    assert await collect(worker.generate_stream(request)) == items[2]


def test_text_deltas_hold_back_a_possible_stop_string() -> None:
    """Text that may start a stop string waits until it cannot; a stop string ends the
    deltas before it; the deltas join to the final text."""
    deltas = TextDeltas(stops=("END", "\n\n"))
    sent = [deltas.update(t) for t in ("The", "The E", "The EN", "The ENd", "The ENd\n")]
    assert sent == ["The", " ", "", "ENd", ""]
    assert deltas.update("The ENd\n\nmore") == ""
    assert deltas.update("The ENd\n\nmore and more") == ""
    assert deltas.finish("The ENd") == ""
    assert deltas.sent == "The ENd"


def test_text_deltas_wait_for_a_whole_character_and_finish_with_the_rest() -> None:
    """A trailing U+FFFD (a character whose bytes are not all decoded) is held back; the
    final text adds whatever was not sent; a final text that diverged adds nothing."""
    deltas = TextDeltas()
    assert deltas.update("caf\ufffd") == "caf"
    assert deltas.update("café") == "é"
    assert deltas.finish("café!") == "!"
    other = TextDeltas()
    assert other.update("abc") == "abc"
    assert other.finish("xyz") == ""


async def _items(name: str, count: int, delay: float, closed: list[str]) -> AsyncGenerator[str]:
    try:
        for i in range(count):
            await asyncio.sleep(delay)
            yield f"{name}{i}"
    finally:
        closed.append(name)


async def _failing(closed: list[str]) -> AsyncGenerator[str]:
    try:
        yield "f0"
        await asyncio.sleep(0.01)
        raise WorkerFailure("m", "broken")
    finally:
        closed.append("f")


async def test_merged_streams_interleave_and_each_item_names_its_stream() -> None:
    """Items come as they are made, tagged with their stream's index; all streams end."""
    closed: list[str] = []
    merged = merge_streams([_items("a", 2, 0.02, closed), _items("b", 3, 0.001, closed)])
    got = [item async for item in merged]
    assert sorted(got) == [(0, "a0"), (0, "a1"), (1, "b0"), (1, "b1"), (1, "b2")]
    assert got.index((1, "b2")) < got.index((0, "a1"))
    assert sorted(closed) == ["a", "b"]


async def test_a_failing_stream_closes_the_others_and_is_raised() -> None:
    """The first failure is raised from the merged stream; the other streams are closed."""
    closed: list[str] = []
    merged = merge_streams([_items("a", 100, 0.005, closed), _failing(closed)])
    with pytest.raises(WorkerFailure, match="broken"):
        async for _ in merged:
            pass
    assert sorted(closed) == ["a", "f"]


async def test_closing_the_merged_stream_closes_every_stream() -> None:
    """Leaving a merged stream early (``closing``) closes the streams it reads."""
    closed: list[str] = []
    merged = merge_streams([_items("a", 100, 0.005, closed), _items("b", 100, 0.005, closed)])
    async with closing(merged) as items:
        async for _ in items:
            break
    assert sorted(closed) == ["a", "b"]


def test_feed_chunks_finish_a_sample_the_moment_it_is_done() -> None:
    """Tokens become text chunks; a sample's completion adds the rest of its text at once
    (here: "c", held back as a possible start of the stop "cd", was text after all); the
    call's completions are there once every sample is done."""

    def decode(ids: object) -> str:
        return "".join(chr(ord("a") + i) for i in ids)  # type: ignore[attr-defined]

    chunks = FeedChunks(2, ["cd"], decode)
    first = chunks.add([(0, 0, -1.0), (1, 1, -0.5), (0, 2, -1.0)])
    assert [(c.index, c.text, c.token_ids) for c in first] == [(0, "a", (0, 2)), (1, "b", (1,))]
    done = Completion(text="ac", token_ids=(0, 2), logprobs=(-1.0, -1.0), finish_reason="stop")
    assert [c.text for c in chunks.add([(0, done)])] == ["c"]
    assert chunks.completions is None
    other = Completion(text="b", token_ids=(1,), logprobs=(-0.5,), finish_reason="length")
    assert chunks.add([(1, other)]) == []
    assert chunks.completions == (done, other)
