"""The thread bridge to a vLLM engine's own event loop.

vLLM's output handler and its ZMQ sockets are bound to the loop that made them, so the
engine lives on one ``LoopThread``: an event loop running forever in a daemon thread. Any
caller's loop (one ``asyncio.run`` per query included) submits coroutines to it with
``run_coroutine_threadsafe``; ``gather_all`` runs a batch of engine requests there, all or
nothing.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Awaitable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = ["LoopThread", "gather_all"]

_T = TypeVar("_T")


@dataclass
class LoopThread:
    """An event loop running forever in a daemon thread named ``name``."""

    name: str

    def __post_init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            pending = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    def submit(self, coro: Coroutine[Any, Any, _T]) -> concurrent.futures.Future[_T]:
        """Schedule ``coro`` on the loop; RuntimeError once the loop is closed."""
        if self.loop.is_closed():
            coro.close()
            raise RuntimeError("the engine loop is closed")
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call(self, coro: Coroutine[Any, Any, _T]) -> _T:
        """Run ``coro`` on the loop and block until it ends."""
        return self.submit(coro).result()

    def stop(self) -> None:
        """Stop the loop (cancelling what still runs there) and join the thread."""
        if not self.loop.is_closed() and self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
        if threading.current_thread() is not self.thread:
            self.thread.join()


async def gather_all(calls: Sequence[Awaitable[_T]]) -> list[_T]:
    """Run the calls concurrently; the first failure cancels the rest and is raised."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(_as_coroutine(call)) for call in calls]
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None
    return [task.result() for task in tasks]


async def _as_coroutine(call: Awaitable[_T]) -> _T:
    return await call
