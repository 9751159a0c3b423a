"""One query answered for one request: the orchestrator's ``answer`` in a task of its own,
its events on a queue (for the stream) and to the observers (metrics, spans), and the
ways it ends: answered, or cancelled because the client left.

Cancelling the run cancels ``Orchestrator.answer``, which cancels the strategy and every
worker call in flight; ``cancel_and_wait`` returns once they have all stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence

from starlette.types import Receive

from orchestrator.events import AnswerDecided, QueryEvent
from orchestrator.orchestrator import Orchestrator
from orchestrator.types import Answer
from system2.server.request_options import RequestOptions

__all__ = ["ClientDisconnected", "QueryRun", "answer_unless_disconnected"]

RunItem = QueryEvent | Answer
"""What the run's queue carries: events, then the answer (last)."""


class ClientDisconnected(Exception):
    """The client went away before its answer was ready; the query was cancelled."""


class QueryRun:
    def __init__(
        self,
        orchestrator: Orchestrator,
        options: RequestOptions,
        *,
        observers: Sequence[Callable[[QueryEvent], None]] = (),
    ) -> None:
        self.options = options
        self.queue: asyncio.Queue[RunItem] = asyncio.Queue()
        self.decided: AnswerDecided | None = None
        self._observers = tuple(observers)
        self.task = asyncio.create_task(
            orchestrator.answer(
                options.query,
                budget=options.budget,
                strategy=options.strategy,
                on_event=self._on_event,
            ),
            name=f"answer-{options.query.id}",
        )
        self.task.add_done_callback(self._done)

    @property
    def query_id(self) -> str:
        return self.options.query.id

    def _on_event(self, event: QueryEvent) -> None:
        if isinstance(event, AnswerDecided):
            self.decided = event
        self.queue.put_nowait(event)
        for observe in self._observers:
            observe(event)

    def _done(self, task: asyncio.Task[Answer]) -> None:
        if not task.cancelled() and task.exception() is None:
            self.queue.put_nowait(task.result())

    async def next(self) -> RunItem:
        """The next event, or the answer; raises what ``answer`` raised (cancelled: the
        run was cancelled)."""
        if self.task.done() and self.queue.empty():
            return self.task.result()
        getter = asyncio.ensure_future(self.queue.get())
        try:
            await asyncio.wait({getter, self.task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not getter.done():
                getter.cancel()
        if getter.done() and not getter.cancelled():
            return getter.result()
        return self.task.result()

    async def cancel_and_wait(self) -> None:
        """Cancel the query (if still running) and wait until every call has stopped."""
        if not self.task.done():
            self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.shield(self.task)


async def _disconnected(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def answer_unless_disconnected(run: QueryRun, receive: Receive) -> Answer:
    """The run's answer, or ``ClientDisconnected`` (after cancelling the query) if the
    client goes away first. ``receive`` must have delivered the whole body already."""
    watcher = asyncio.create_task(_disconnected(receive))
    try:
        await asyncio.wait({run.task, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if run.task.done():
            return run.task.result()
        await run.cancel_and_wait()
        raise ClientDisconnected(run.query_id)
    except asyncio.CancelledError:
        await run.cancel_and_wait()
        raise
    finally:
        watcher.cancel()
