"""Streaming a ``VLLMWorker`` generate call: the outputs of its engine requests, read on the
engine's loop as they come, cross to the caller's loop as plain data.

* The call's ``n`` engine requests are ``generate``'s own (``workers.vllm.requests``), with
  cumulative outputs: each holds a sample's text, token ids and log-probs so far, and the
  last one is read exactly as ``generate`` reads its final output (``read_completion``:
  stop strings trimmed), so the stream ends with the same completions.
* ``SampleStream.take`` runs on the engine loop for each output: it sends the tokens that
  are new and the text so far, or, once the request is finished, its ``Completion``
  (``call_soon_threadsafe``); nothing the engine may still change crosses threads.
* ``SampleStream.chunks(run)`` runs on the caller's loop: it drives ``run`` (the engine
  requests, bridged to the engine loop) as a task and makes what arrives into
  ``TokenChunk``s, their text through ``TextDeltas`` (text that is or may start a stop
  string is never sent). Leaving it early (the stream closed, or its task cancelled)
  cancels ``run``, and with it the engine requests, which vLLM then aborts.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Coroutine, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workers.base import Completion, TokenChunk
from workers.errors import WorkerFailure
from workers.streaming import TextDeltas
from workers.vllm.outputs import read_completion

if TYPE_CHECKING:
    from vllm.outputs import RequestOutput

__all__ = ["SampleStream"]


@dataclass(frozen=True)
class _Output:
    """Sample ``sample`` made ``token_ids`` (their ``logprobs``: empty if not all came) and
    its text so far is ``text``; ``completion`` is set when its request is finished."""

    sample: int
    text: str
    token_ids: tuple[int, ...]
    logprobs: tuple[float, ...]
    completion: Completion | None = None


class _RunEnded:
    """The engine requests' run is over (succeeded, failed or cancelled)."""


_Item = _Output | _RunEnded


class SampleStream:
    """The ``n`` samples of one streamed call (see the module's docstring); built on the
    caller's loop, fed on the engine loop (``take``), read on the caller's (``chunks``)."""

    def __init__(self, model_name: str, n: int, stops: Sequence[str]) -> None:
        self._model_name = model_name
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._seen = [0] * n  # engine loop: how many tokens of each sample were sent
        self._texts = [TextDeltas(stops) for _ in range(n)]
        self._done: list[Completion | None] = [None] * n

    # -- the engine loop ------------------------------------------------------------------

    def take(self, sample: int, output: RequestOutput) -> None:
        """One output of sample ``sample``'s engine request (cumulative)."""
        choice = output.outputs[0]
        seen, ids = self._seen[sample], choice.token_ids
        new = tuple(int(t) for t in ids[seen:])
        logprobs = choice.logprobs or []
        values = tuple(
            float(logprobs[j][t].logprob)
            for j, t in enumerate(new, start=seen)
            if j < len(logprobs) and t in logprobs[j]
        )
        self._seen[sample] = len(ids)
        done = read_completion(self._model_name, output) if output.finished else None
        item = _Output(sample, choice.text, new, values if len(values) == len(new) else (), done)
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the caller's loop is closed: end the requests
            raise WorkerFailure(self._model_name, "the streamed call's reader is gone") from None

    # -- the caller's loop ----------------------------------------------------------------

    def completions(self) -> tuple[Completion, ...]:
        """Every sample's completion, once ``chunks`` has run to its end."""
        done = tuple(c for c in self._done if c is not None)
        if len(done) != len(self._done):
            raise RuntimeError("the streamed call has not finished")
        return done

    async def chunks(self, run: Coroutine[Any, Any, object]) -> AsyncGenerator[TokenChunk, None]:
        """Run ``run`` and yield each sample's chunks as its outputs arrive; its failure is
        raised; leaving early cancels it."""
        task = asyncio.ensure_future(run)
        task.add_done_callback(lambda _: self._queue.put_nowait(_RunEnded()))
        try:
            while not isinstance(item := await self._queue.get(), _RunEnded):
                chunk = self._chunk(item)
                if chunk is not None:
                    yield chunk
            await task  # raises the run's failure; on success every sample is done
        finally:  # left early: cancel the run (once done, this only collects its outcome)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def _chunk(self, item: _Output) -> TokenChunk | None:
        deltas = self._texts[item.sample]
        if item.completion is None:
            text = deltas.update(item.text)
        else:
            self._done[item.sample] = item.completion
            text = deltas.finish(item.completion.text)
        if not text and not item.token_ids:
            return None
        return TokenChunk(
            index=item.sample, text=text, token_ids=item.token_ids, logprobs=item.logprobs
        )
