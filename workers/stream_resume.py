"""Continuing a stream on another replica after the first broke mid-way.

A pool that has passed chunks of a stream on cannot take them back. When its replica fails
mid-stream, the pool asks another replica for the whole call again and passes on only what
goes beyond what was already passed on (``resumed``): replicas of one model make the same
tokens for a greedy or seeded request. ``PassedOn`` keeps, per sample, the text and tokens
passed on; the replayed stream must repeat them exactly, and where it does not (sampling
that is not reproducible across replicas), the call fails with ``StreamDiverged`` rather than
hand the reader a text spliced from two different samples.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from workers.base import GenerateResult, StreamItem, TokenChunk
from workers.errors import WorkerFailure
from workers.streaming import close_stream

__all__ = ["PassedOn", "StreamDiverged", "resumed"]


class StreamDiverged(WorkerFailure):
    """A replayed stream made other text than the one already passed on (not retryable:
    another replica would diverge as well)."""

    retryable = False


@dataclass
class _Sample:
    text: str = ""
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)


class PassedOn:
    """What a stream has passed on so far, per sample."""

    def __init__(self) -> None:
        self._samples: dict[int, _Sample] = {}

    def __bool__(self) -> bool:
        return bool(self._samples)

    def record(self, chunk: TokenChunk) -> None:
        sample = self._samples.setdefault(chunk.index, _Sample())
        sample.text += chunk.text
        sample.token_ids += chunk.token_ids
        sample.logprobs += chunk.logprobs

    def sample(self, index: int) -> _Sample:
        return self._samples.get(index, _Sample())


async def resumed(
    stream: AsyncIterator[StreamItem], passed: PassedOn, model: str
) -> AsyncIterator[StreamItem]:
    """``stream`` (the whole call again) without what ``passed`` holds: each chunk cut to
    the part beyond it; ``StreamDiverged`` where the replay differs from it."""
    try:
        async for item in _cut(stream, passed, model):
            yield item
    finally:
        await close_stream(stream)


async def _cut(
    stream: AsyncIterator[StreamItem], passed: PassedOn, model: str
) -> AsyncIterator[StreamItem]:
    replayed: dict[int, _Sample] = {}
    async for item in stream:
        if isinstance(item, GenerateResult):
            for index, completion in enumerate(item.completions):
                _check_prefix(model, index, passed.sample(index).text, completion.text)
            yield item
            return
        before = replayed.setdefault(item.index, _Sample())
        done = passed.sample(item.index)
        text_from, tokens_from = len(before.text), len(before.token_ids)
        before.text += item.text
        before.token_ids += item.token_ids
        _check_overlap(model, item.index, done.text, before.text)
        if done.token_ids and before.token_ids:
            _check_overlap(model, item.index, done.token_ids, before.token_ids)
        cut_text = max(len(done.text) - text_from, 0)
        cut_tokens = max(len(done.token_ids) - tokens_from, 0)
        fresh = TokenChunk(
            index=item.index,
            text=item.text[cut_text:],
            token_ids=item.token_ids[cut_tokens:],
            logprobs=item.logprobs[cut_tokens:],
        )
        if fresh.text or fresh.token_ids:
            yield fresh


def _check_overlap(model: str, index: int, done: str | list[int], again: str | list[int]) -> None:
    """The replay so far and what was passed on agree where both exist."""
    shared = min(len(done), len(again))
    if done[:shared] != again[:shared]:
        raise StreamDiverged(
            model,
            f"sample {index} replayed on another replica diverged from the "
            f"{len(done)} characters/tokens already streamed",
        )


def _check_prefix(model: str, index: int, done: str, final: str) -> None:
    if not final.startswith(done):
        raise StreamDiverged(
            model, f"sample {index}'s final text on another replica does not extend the streamed"
        )
