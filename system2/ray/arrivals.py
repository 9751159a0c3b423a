"""``ArrivalWindow``: lets calls that arrive close together through a replica at once.

A backend that batches what is waiting at one moment (the embedded transformers model
takes every job queued within a few milliseconds) batches calls made together in one
process. Through Ray the same calls reach a replica a few milliseconds apart (each takes
its own hop), so the first starts alone and the rest wait for it to finish. A replica
therefore holds each call until ``window_s`` has passed with no new arrival (at most
``max_wait_s`` after the first of the group), then releases the whole group together.
A call cancelled while held leaves the group; the others go on.

Example:
    >>> window = ArrivalWindow(window_s=0.0)  # 0: calls pass at once
"""

from __future__ import annotations

import asyncio

__all__ = ["ArrivalWindow"]


class ArrivalWindow:
    """Groups calls that arrive within ``window_s`` of one another (see the module)."""

    def __init__(self, window_s: float, max_wait_s: float | None = None) -> None:
        if window_s < 0:
            raise ValueError(f"window_s must be at least 0, got {window_s}")
        self.window_s = window_s
        self.max_wait_s = max_wait_s if max_wait_s is not None else 4 * window_s
        self._group: asyncio.Future[None] | None = None
        self._releaser: asyncio.Task[None] | None = None
        self._first = self._last = 0.0

    async def wait(self) -> None:
        """Return when this call's group is released."""
        if self.window_s <= 0:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._group is None:
            self._group = loop.create_future()
            self._first = now
            self._releaser = loop.create_task(self._release(self._group))
        self._last = now
        await asyncio.shield(self._group)  # one caller cancelled: the group still goes

    async def _release(self, group: asyncio.Future[None]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = min(self._last + self.window_s, self._first + self.max_wait_s)
            if due <= loop.time():
                break
            await asyncio.sleep(due - loop.time())
        self._group = None
        group.set_result(None)
