"""Stopping a long command: SIGTERM takes the path Ctrl-C takes, and both exit 128 + signal.

``stop_on_signals()`` wraps a command's body; ``StoppableGroup``, the root command group,
wraps every command in it (eval, router collect, verifier synthesize/eval: the long ones,
and the rest). Inside it, SIGTERM is handled as SIGINT is: within ``asyncio.run`` the
main task is cancelled (asyncio's own Ctrl-C handling: in-flight work is cancelled, and
``async with`` blocks close the workers, which shuts their engines down), elsewhere
``KeyboardInterrupt`` is raised. Either way the command then exits with 130 (SIGINT) or
143 (SIGTERM) and a one-line note, instead of a traceback or Click's "Aborted!". A second
signal stops waiting for the clean path (asyncio raises ``KeyboardInterrupt`` at once).
Run files are appended record by record, so an interrupted run loses only the items in
flight and resumes where it stopped.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import typer
from typer.core import TyperGroup

from system2.cli.output import err

__all__ = ["StoppableGroup", "stop_on_signals"]


class StoppableGroup(TyperGroup):
    """A command group that runs its commands inside ``stop_on_signals``."""

    def invoke(self, ctx: Any) -> Any:
        with stop_on_signals():
            return super().invoke(ctx)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Run the block so that SIGINT and SIGTERM stop it cleanly; exit 128 + the signal.
    (Signal handlers live in the main thread: elsewhere SIGTERM keeps its own handling.)"""
    received: list[int] = []

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        as_sigint = signal.getsignal(signal.SIGINT)  # asyncio.run's while it runs
        if callable(as_sigint):
            as_sigint(signal.SIGINT, frame)
        else:
            raise KeyboardInterrupt

    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, on_sigterm) if main else None
    try:
        yield
    except KeyboardInterrupt:
        sig = signal.Signals(received[0] if received else signal.SIGINT)
        err.print(f"[yellow]stopped by {sig.name}[/yellow]", highlight=False)
        raise typer.Exit(128 + sig.value) from None
    finally:
        if main:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
