"""Admission: at most ``max_running`` queries answered at once and ``max_waiting`` queued
behind them; a request beyond both is refused at once (429 with ``Retry-After``), one that
waits longer than its timeout gets 503, and while draining (after SIGTERM) every new
request gets 503 while the admitted ones finish.

Example:
    >>> admission = Admission(max_running=2, max_waiting=0)
    >>> admission.running, admission.waiting, admission.draining
    (0, 0, False)
"""

from __future__ import annotations

import asyncio
import time

__all__ = ["Admission", "Draining", "Lease", "Overloaded", "QueueTimeout"]


class Overloaded(Exception):
    """Every running slot and every waiting place is taken."""


class Draining(Exception):
    """The server is shutting down and admits nothing new."""


class QueueTimeout(Exception):
    """No slot freed up within the request's timeout."""


class Lease:
    """One admitted query's slot; ``release`` may be called any number of times."""

    def __init__(self, admission: Admission) -> None:
        self._admission: Admission | None = admission

    def release(self) -> None:
        if self._admission is not None:
            self._admission._release()
            self._admission = None


class Admission:
    def __init__(self, *, max_running: int, max_waiting: int) -> None:
        if max_running < 1 or max_waiting < 0:
            raise ValueError("max_running must be >= 1 and max_waiting >= 0")
        self.max_running, self.max_waiting = max_running, max_waiting
        self._slots = asyncio.Semaphore(max_running)
        self._running = 0
        self._waiting = 0
        self._draining = False

    @property
    def running(self) -> int:
        return self._running

    @property
    def waiting(self) -> int:
        return self._waiting

    @property
    def draining(self) -> bool:
        return self._draining

    @property
    def idle(self) -> bool:
        return self._running == 0 and self._waiting == 0

    def begin_drain(self) -> None:
        """Admit nothing new from now on; the admitted queries go on."""
        self._draining = True

    async def admit(self, timeout_s: float) -> Lease:
        """A slot, waiting in line for at most ``timeout_s``.

        Raises ``Draining``, ``Overloaded`` (the line is full) or ``QueueTimeout``.
        """
        if self._draining:
            raise Draining()
        if self._running + self._waiting >= self.max_running + self.max_waiting:
            raise Overloaded()
        self._waiting += 1
        try:
            async with asyncio.timeout(timeout_s):
                await self._slots.acquire()
        except TimeoutError:
            raise QueueTimeout() from None
        finally:
            self._waiting -= 1
        self._running += 1
        return Lease(self)

    async def wait_idle(self, timeout_s: float) -> bool:
        """Wait until no query is running or waiting, for at most ``timeout_s``; whether
        that happened."""
        deadline = time.monotonic() + timeout_s
        while not self.idle:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    def _release(self) -> None:
        self._running -= 1
        self._slots.release()
