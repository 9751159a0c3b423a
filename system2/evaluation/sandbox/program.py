"""``run_python``: run one untrusted script contained and report how it ended."""

from __future__ import annotations

import math
import signal
import tempfile
import time
from pathlib import Path

import structlog

from system2.evaluation.sandbox.containment import Limits, containment
from system2.evaluation.sandbox.process import ContainedProcess
from system2.evaluation.sandbox.results import ProgramResult, ProgramStatus

__all__ = ["run_python"]

log = structlog.get_logger(__name__)


def run_python(code: str, *, timeout_s: float, memory_mb: int) -> ProgramResult:
    """Run ``code`` as a script in a fresh contained interpreter."""
    if timeout_s <= 0 or memory_mb <= 0:
        raise ValueError("timeout_s and memory_mb must be positive")
    contained = containment()
    limits = Limits(memory_mb=memory_mb, cpu_s=math.ceil(timeout_s) + 1)
    with tempfile.TemporaryDirectory(prefix="system2-sandbox-") as workdir:
        work = Path(workdir)
        (work / "program.py").write_text(code, encoding="utf-8")
        start = time.monotonic()
        process = ContainedProcess.start(contained, work, limits, ["run", "program.py"])
        try:
            finished = process.wait_until(start + timeout_s)
        finally:
            returncode = process.kill()
        status: ProgramStatus
        if not finished or returncode == -signal.SIGXCPU:
            status = "timeout"
        elif returncode < 0:
            status = "crashed"
        else:
            status = "exited"
        result = ProgramResult(
            status=status,
            returncode=returncode if finished else None,
            stdout_tail=process.stdout_tail(),
            stderr_tail=process.stderr_tail(),
            seconds=time.monotonic() - start,
            enforced=contained.enforced(limits),
        )
    log.debug("sandbox.program", status=status, returncode=result.returncode)
    return result
