"""SIGTERM and SIGINT stop a command cleanly: cleanup runs, the exit code is 128 + signal."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from system2.cli.signals import StoppableGroup, stop_on_signals
from system2.evaluation import load_run
from workers.parent_death import descendants, process_start_time


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


@pytest.fixture
def ctrl_c_delivered() -> Iterator[None]:
    """Python's own SIGINT handler, even when this run inherited SIGINT ignored (a shell's
    `cmd &`: Python then installs none, and Ctrl-C would never arrive)."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


@pytest.mark.usefixtures("ctrl_c_delivered")
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


VLLM_CONFIG = """
models:
  smol:
    kind: vllm
    model: {model}
    max_model_len: 512
    kv_cache_gib: 0.25
    enforce_eager: true
policy: {{kind: fixed, models: [smol]}}
strategy: {{kind: self_consistency, n: 2, temperature: 0.7, max_tokens: 256, seed: 0}}
task: math
logging: {{format: console, level: info}}
"""


@pytest.mark.slow
def test_sigterm_stops_an_eval_on_an_in_process_engine(
    small_model_name: str, tmp_path: Path
) -> None:
    """SIGTERM to ``system2 eval`` on a generating in-process vLLM engine: it exits 143 within
    seconds, its engine processes are gone, and the run file reads back (header, no torn
    or failed records: the items in flight are simply not recorded)."""
    pytest.importorskip("vllm")
    config = tmp_path / "vllm.yaml"
    config.write_text(VLLM_CONFIG.format(model=small_model_name))
    out, log = tmp_path / "run.jsonl", tmp_path / "eval.log"
    command = ["eval", "gsm_symbolic", "--limit", "3", "--out", str(out), "-c", str(config)]
    with log.open("w") as sink:
        run = subprocess.Popen(
            [sys.executable, "-c", "from system2.cli.main import app; app()", *command],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    engine: dict[int, int] = {}
    try:
        deadline = time.monotonic() + 300
        while "eval.run.start" not in log.read_text(errors="replace"):
            assert run.poll() is None, log.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline
            time.sleep(0.5)
        time.sleep(2.0)  # the engine is generating the first item
        engine = descendants(run.pid)
        run.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        assert run.wait(timeout=30) == 143
        assert time.monotonic() - sent < 15
        assert _survivors(engine, within_s=5.0) == []
        assert "stopped by SIGTERM" in log.read_text(errors="replace")
        recorded = load_run(out)
        assert recorded.header["dataset"] == "gsm_symbolic"
        assert all(item["status"] != "failed" for item in recorded.items)
    finally:
        run.kill()
        run.wait()
        for pid, start in engine.items():
            if process_start_time(pid) == start:
                os.kill(pid, signal.SIGKILL)


def _survivors(processes: dict[int, int], within_s: float) -> list[int]:
    deadline = time.monotonic() + within_s
    while True:
        alive = [p for p, start in processes.items() if process_start_time(p) == start]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.2)
