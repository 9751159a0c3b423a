"""Start a contained process, wait for it with a deadline, and kill everything it started.

Output goes to files, not pipes, so a stray process holding a pipe open cannot hang the
harness; only the tails are kept. No ``preexec_fn`` runs between fork and exec (unsafe in a
process with threads): the sandboxed program sets its own resource limits.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from system2.evaluation.sandbox.containment import (
    SANDBOX_DIR,
    Containment,
    Limits,
    python_executable,
)

__all__ = ["ContainedProcess", "install_child", "tail"]

_TAIL_CHARS = 4000
_POLL_S = 0.005


def install_child(workdir: Path) -> None:
    """Copy the in-sandbox program (``child.py``) into ``workdir``."""
    source = resources.files("system2.evaluation.sandbox") / "child.py"
    with resources.as_file(source) as path:
        shutil.copyfile(path, workdir / "child.py")


def tail(path: Path, limit: int = _TAIL_CHARS) -> str:
    """The last ``limit`` characters of a file ('' when it is missing)."""
    if not path.exists():
        return ""
    size = path.stat().st_size
    with path.open("rb") as f:
        f.seek(max(0, size - limit))
        text = f.read().decode("utf-8", errors="replace")
    return f"[... {size - limit} bytes cut]\n{text}" if size > limit else text


@dataclass
class ContainedProcess:
    """``child.py ROLE ARGS`` running contained in ``workdir``, output in its files."""

    proc: subprocess.Popen[bytes]
    workdir: Path
    #: bwrap reports a child killed by signal N as exit code 128 + N.
    signal_as_exit_code: bool

    @classmethod
    def start(
        cls,
        containment: Containment,
        workdir: Path,
        limits: Limits,
        role_args: Sequence[str],
        *,
        stdin: int = subprocess.DEVNULL,
        pass_fds: Sequence[int] = (),
    ) -> ContainedProcess:
        install_child(workdir)
        if containment.isolated:
            workdir.chmod(0o777)  # the sandbox's user (nobody, mapped) writes here
            where, env = SANDBOX_DIR, None
        else:
            where, env = str(workdir), _clean_env(workdir)
        command = [
            *containment.prefix(workdir),
            python_executable(),
            "-I",
            "-B",
            f"{where}/child.py",
            *limits.argv(containment.uid),
            *role_args,
        ]
        with (workdir / ".stdout").open("wb") as out, (workdir / ".stderr").open("wb") as err:
            proc = subprocess.Popen(
                command,
                cwd=workdir,
                env=env,
                stdin=stdin,
                stdout=out,
                stderr=err,
                pass_fds=tuple(pass_fds),
                process_group=0,
            )
        return cls(proc, workdir, containment.isolated)

    def wait_until(self, deadline: float) -> bool:
        """Wait for the process to end without reaping it (its process group id stays
        valid for the kill); False when the deadline passes first."""
        while True:
            info = os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            if info is not None:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(_POLL_S)

    def kill(self) -> int:
        """Kill the process group (and with bwrap, its PID namespace); the exit code,
        negative for a signal as ``subprocess`` reports it."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        code = self.proc.wait()
        if self.signal_as_exit_code and code > 128:
            return -(code - 128)
        return code

    def stdout_tail(self) -> str:
        return tail(self.workdir / ".stdout")

    def stderr_tail(self) -> str:
        return tail(self.workdir / ".stderr")


def _clean_env(workdir: Path) -> dict[str, str]:
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(workdir),
        "TMPDIR": str(workdir),
        "LANG": "C.UTF-8",
    }
