"""Plumbing for streamed generation (``Worker.generate_stream``), shared by the backends.

* ``TextDeltas``: a sample's text so far -> the new text to send, never running past a
  stop string (the text that may start one is held back until it is clear) nor ending
  inside a character that is still being decoded (a trailing U+FFFD). Its deltas join
  to the completion's final text.
* ``TokenFeed``: tokens of one call, from the thread that decodes them to the event loop
  that streams them, and each sample's ``Completion`` the moment it is done (a sample need
  not wait for the rest of its batch); the reader's ``cancel()`` is seen by the thread at
  its next token. ``FeedChunks`` makes what is read from it into ``TokenChunk``s.
* ``merge_streams``: several streams read concurrently as one; closing it closes them all.
* ``collect``: a stream's final ``GenerateResult``; ``closing``/``close_stream``: close a
  stream (``Worker.generate_stream`` returns an async generator) when done with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from typing import Any, TypeVar

import structlog

from workers.base import Completion, GenerateResult, StreamItem, TokenChunk

__all__ = [
    "FeedChunks",
    "TextDeltas",
    "TokenFeed",
    "close_stream",
    "closing",
    "collect",
    "find_stop",
    "merge_streams",
]

log = structlog.get_logger(__name__)

_T = TypeVar("_T")

_UNDECODED = "\ufffd"  # what a tokenizer shows for a character whose bytes are not all there


def find_stop(text: str, stops: Sequence[str]) -> int | None:
    """Index where the earliest stop string starts in ``text``, or None."""
    hits = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return min(hits) if hits else None


def _may_start_stop(text: str, stops: Sequence[str]) -> int:
    """How many characters at the end of ``text`` could be the start of a stop string."""
    longest = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:size]):
                longest = size
                break
    return longest


class TextDeltas:
    """Turns one sample's text-so-far into safe deltas (see the module's docstring).

    >>> deltas = TextDeltas(stops=["\\n\\n"])
    >>> deltas.update("Paris"), deltas.update("Paris.\\n"), deltas.update("Paris.\\n\\nNext")
    ('Paris', '.', '')
    >>> deltas.finish("Paris.")
    ''
    """

    def __init__(self, stops: Sequence[str] = ()) -> None:
        self._stops = tuple(s for s in stops if s)
        self.sent = ""
        self._stopped = False

    def update(self, text: str) -> str:
        """The text to send now, given the sample's whole text so far."""
        if self._stopped:
            return ""
        cut = find_stop(text, self._stops)
        if cut is not None:
            self._stopped = True
            safe = text[:cut]
        else:
            safe = text[: len(text) - _may_start_stop(text, self._stops)]
        safe = safe.rstrip(_UNDECODED)
        if not safe.startswith(self.sent):
            return ""  # a re-decoding changed text already sent: wait for the final text
        delta, self.sent = safe[len(self.sent) :], safe
        return delta

    def finish(self, final: str) -> str:
        """What remains of the completion's ``final`` text after what was sent."""
        if not final.startswith(self.sent):
            log.warning("stream_text_diverged", sent=self.sent[-40:], final=final[-40:])
            return ""
        rest, self.sent = final[len(self.sent) :], final
        return rest


_Token = tuple[int, int, float]
"""(sample index, token id, its log-prob)."""

_Done = tuple[int, Completion]
"""(sample index, its completion): the sample is finished."""

FeedItem = _Token | _Done


class TokenFeed:
    """Tokens of one call from a decoding thread (``put``, ``end``) to the event loop
    (``next_batch``); ``cancel`` (loop side) is read by the thread as ``cancelled``."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queue: asyncio.Queue[FeedItem | None] = asyncio.Queue()
        self._cancelled = threading.Event()

    # -- the decoding thread --------------------------------------------------------------

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def put(self, sample: int, token: int, logprob: float) -> None:
        self._send((sample, token, logprob))

    def finish(self, sample: int, completion: Completion) -> None:
        """Sample ``sample`` is done: ``completion`` is final."""
        self._send((sample, completion))

    def end(self) -> None:
        """No more tokens: the call finished (or failed, or was cancelled)."""
        self._send(None)

    def _send(self, item: FeedItem | None) -> None:
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the loop is closed: nobody is reading any more
            self._cancelled.set()

    # -- the event loop -------------------------------------------------------------------

    def cancel(self) -> None:
        self._cancelled.set()

    async def next_batch(self) -> list[FeedItem] | None:
        """Everything that has arrived (waiting for at least one item), in order; None once
        the call has ended and all of it was read."""
        first = await self._queue.get()
        if first is None:
            return None
        batch = [first]
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if item is None:
                self._queue.put_nowait(None)  # seen again by the next call
                break
            batch.append(item)
        return batch


class FeedChunks:
    """The ``TokenChunk``s of a call's ``n`` samples from what is read off its feed
    (``add``: tokens, then each sample's rest of text once it is done), and its
    ``completions`` once every sample is done. ``decode``: token ids -> text, as the
    completion's text is decoded."""

    def __init__(self, n: int, stops: Sequence[str], decode: Callable[[Sequence[int]], str]):
        self._texts = [TextDeltas(stops) for _ in range(n)]
        self._made: list[list[int]] = [[] for _ in range(n)]
        self._done: list[Completion | None] = [None] * n
        self._decode = decode

    @property
    def completions(self) -> tuple[Completion, ...] | None:
        """Every sample's completion, in order; None while one is still running."""
        done = [c for c in self._done if c is not None]
        return tuple(done) if len(done) == len(self._done) else None

    def add(self, items: Sequence[FeedItem]) -> list[TokenChunk]:
        chunks = []
        fresh: dict[int, tuple[list[int], list[float]]] = {}
        for item in items:
            if len(item) == 2:  # a sample is done: its tokens so far, then the rest of its text
                sample, completion = item
                chunks += self._flush(fresh, only=sample)
                self._done[sample] = completion
                chunks += self._rest(sample, completion)
                continue
            sample, token, logprob = item
            ids, logprobs = fresh.setdefault(sample, ([], []))
            ids.append(token)
            logprobs.append(logprob)
        return chunks + self._flush(fresh)

    def finish(self, result: GenerateResult) -> list[TokenChunk]:
        """The rest of the text of each sample not done yet, from the call's result."""
        chunks = []
        for sample, completion in enumerate(result.completions):
            if self._done[sample] is None:
                chunks += self._rest(sample, completion)
        return chunks

    def _flush(
        self, fresh: dict[int, tuple[list[int], list[float]]], only: int | None = None
    ) -> list[TokenChunk]:
        chunks = []
        for sample in sorted(fresh) if only is None else [only] if only in fresh else []:
            ids, logprobs = fresh.pop(sample)
            self._made[sample] += ids
            text = self._texts[sample].update(self._decode(self._made[sample]))
            chunks.append(
                TokenChunk(index=sample, text=text, token_ids=tuple(ids), logprobs=tuple(logprobs))
            )
        return chunks

    def _rest(self, sample: int, completion: Completion) -> list[TokenChunk]:
        rest = self._texts[sample].finish(completion.text)
        return [TokenChunk(index=sample, text=rest)] if rest else []


class _Ended:
    """A merged stream finished (``error``: how it failed)."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


async def merge_streams(
    streams: Sequence[AsyncGenerator[_T, None]],
) -> AsyncGenerator[tuple[int, _T], None]:
    """``(stream index, item)`` from every stream as the items come. The first failure
    closes the other streams and is raised; closing the merged stream closes them all."""
    queue: asyncio.Queue[tuple[int, _T] | _Ended] = asyncio.Queue()

    async def pump(index: int, stream: AsyncGenerator[_T, None]) -> None:
        try:
            async with contextlib.aclosing(stream):
                async for item in stream:
                    queue.put_nowait((index, item))
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            queue.put_nowait(_Ended(exc))
        else:
            queue.put_nowait(_Ended())

    tasks = [asyncio.create_task(pump(i, s)) for i, s in enumerate(streams)]
    try:
        running = len(tasks)
        while running:
            got = await queue.get()
            if isinstance(got, _Ended):
                if got.error is not None:
                    raise got.error
                running -= 1
                continue
            yield got
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def collect(stream: AsyncIterator[StreamItem]) -> GenerateResult:
    """The ``GenerateResult`` that ends ``stream`` (chunks are dropped)."""
    result: GenerateResult | None = None
    async for item in stream:
        if isinstance(item, GenerateResult):
            result = item
    if result is None:
        raise RuntimeError("the stream ended without a GenerateResult")
    return result


async def close_stream(stream: AsyncIterator[Any]) -> None:
    """Close ``stream`` if it can be closed (an async generator: its ``finally`` runs, which
    for a worker's stream cancels the call)."""
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()


@contextlib.asynccontextmanager
async def closing(stream: AsyncIterator[_T]) -> AsyncIterator[AsyncIterator[_T]]:
    """``async with closing(worker.generate_stream(r)) as items:``: the stream is closed
    on leaving, however the block ends."""
    try:
        yield stream
    finally:
        await close_stream(stream)
