"""SIGTERM and SIGINT stop a command cleanly: cleanup runs, the exit code is 128 + signal."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Callable

import pytest
import typer
from typer.testing import CliRunner

from system2.cli.signals import StoppableGroup, stop_on_signals


def _signal_soon(sig: int, after_s: float = 0.2) -> threading.Timer:
    timer = threading.Timer(after_s, os.kill, (os.getpid(), sig))
    timer.start()
    return timer


def _run_stoppable(sig: int, body: Callable[[], None]) -> None:
    with stop_on_signals():
        _signal_soon(sig)
        body()


async def _long_task(cleaned: list[str]) -> None:
    try:
        await asyncio.sleep(30)
    finally:
        await asyncio.sleep(0)  # a cleanup that awaits (closing workers) still runs
        cleaned.append("closed")


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_cancels_asyncio_run_and_exits_with_its_code(sig: int, code: int) -> None:
    """Inside asyncio.run, SIGTERM (like Ctrl-C) cancels the main task, whose cleanup runs,
    and the block exits with 128 + the signal; the SIGTERM handler is put back after."""
    before = signal.getsignal(signal.SIGTERM)
    cleaned: list[str] = []
    started = time.monotonic()
    with pytest.raises(typer.Exit) as stopped:
        _run_stoppable(sig, lambda: asyncio.run(_long_task(cleaned)))
    assert stopped.value.exit_code == code
    assert cleaned == ["closed"]
    assert time.monotonic() - started < 5
    assert signal.getsignal(signal.SIGTERM) == before


def test_sigterm_outside_an_event_loop_raises_keyboard_interrupt() -> None:
    """Outside asyncio.run (loading models, say) SIGTERM interrupts like Ctrl-C does."""
    cleaned: list[str] = []

    def sleep() -> None:
        try:
            time.sleep(30)
        finally:
            cleaned.append("closed")

    with pytest.raises(typer.Exit) as stopped:
        _run_stoppable(signal.SIGTERM, sleep)
    assert stopped.value.exit_code == 143
    assert cleaned == ["closed"]


def test_stoppable_group_wraps_every_command() -> None:
    """A command of an app built on ``StoppableGroup`` (as ``system2`` is) stops on SIGTERM
    with exit code 143 after its cleanup."""
    app = typer.Typer(cls=StoppableGroup)
    cleaned: list[str] = []

    @app.command()
    def run() -> None:
        _signal_soon(signal.SIGTERM)
        asyncio.run(_long_task(cleaned))

    @app.command()
    def other() -> None:
        pass

    result = CliRunner().invoke(app, ["run"])
    assert result.exit_code == 143
    assert cleaned == ["closed"]
    assert "stopped by SIGTERM" in result.output
