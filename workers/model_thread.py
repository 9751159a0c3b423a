"""``ModelThread``: one thread that runs an in-process model's jobs in batches.

Jobs are queued from any event loop (``submit``). The thread takes every job waiting at
that moment (after a short batching window, up to ``max_batch_rows`` rows), hands them to
``run`` together, and ``run`` resolves each job's future. A job whose caller gave up
before it started is skipped; once running, a job can no longer be cancelled (a streamed
job stops early through its own ``TokenFeed`` instead).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

__all__ = ["ModelThread"]

_Job = TypeVar("_Job")


class ModelThread(Generic[_Job]):
    """Runs ``run(batch)`` on batches of ``(job, future)`` in a thread of its own;
    ``rows_of(job)`` says how many batch rows a job takes."""

    def __init__(
        self,
        name: str,
        run: Callable[[list[tuple[_Job, concurrent.futures.Future[Any]]]], None],
        *,
        rows_of: Callable[[_Job], int],
        max_batch_rows: int,
        batch_window_s: float,
    ) -> None:
        self.name = name
        self._run = run
        self._rows_of = rows_of
        self.max_batch_rows = max_batch_rows
        self.batch_window_s = batch_window_s
        self._jobs: queue.Queue[tuple[_Job, concurrent.futures.Future[Any]] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, job: _Job) -> concurrent.futures.Future[Any]:
        """Queue ``job``; its future resolves once the thread has run it (cancel the future
        to skip a job that has not started)."""
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._ensure_thread()
        self._jobs.put((job, future))
        return future

    async def run(self, job: _Job) -> Any:
        """Queue ``job`` and await its result (cancelling skips it if not started)."""
        return await asyncio.wrap_future(self.submit(job))

    async def close(self) -> None:
        """Stop the thread once the jobs queued before this call have run."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._jobs.put(None)
            await asyncio.to_thread(thread.join)

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name=self.name, daemon=True)
                self._thread.start()

    def _serve(self) -> None:
        while True:
            first = self._jobs.get()
            if first is None:
                return
            time.sleep(self.batch_window_s)
            batch, stop_after = [first], False
            rows = self._rows_of(first[0])
            while rows < self.max_batch_rows:
                try:
                    item = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop_after = True
                    break
                batch.append(item)
                rows += self._rows_of(item[0])
            # A caller that gave up (cancelled) is skipped; once running, a job can no
            # longer be cancelled, so setting its result in ``run`` is always allowed.
            self._run([job for job in batch if job[1].set_running_or_notify_cancel()])
            if stop_after:
                return
