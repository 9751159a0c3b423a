"""Processes that die with this one, however it ends: ``die_with_this_process(pid)``.

vLLM starts its engine (``VLLM::EngineCore``, which starts ``VLLM::Worker`` processes) as a
multiprocessing child that nothing ties to its parent's life: killed by SIGKILL (a crash,
the OOM killer) or by a SIGTERM it does not handle, the parent leaves the engine running,
orphaned, with the model in memory. (vLLM's death pipes tie each ``VLLM::Worker`` to its
engine core, not the engine core to its client; ``PR_SET_PDEATHSIG`` is no way out either:
the engine core is a fresh interpreter, ``fork`` + ``exec`` with no hook to set it, and it
fires when the forking thread ends, which here is the engine's loop thread.)

So one small reaper process per parent (this file, run by the same interpreter, standard
library only, in a session of its own so a Ctrl-C in the terminal does not reach it) is
told over a pipe which processes to guard, by pid and start time (a reused pid is never
hit). Every ``REFRESH_S`` it adds their descendants (so an engine's own workers stay
guarded even if the engine core dies first) and forgets the dead. Once the parent is gone
(the pipe reaches EOF, or its parent pid changes) it sends SIGTERM to every guarded process
still alive, and to the process group of those guarded with ``group=True``; SIGKILL follows
for any left after ``GRACE_S``. A process that ends normally has its guarded processes
reaped the same way, so whatever its clean shutdown missed goes too. Linux only (``/proc``).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from typing import NamedTuple

__all__ = [
    "GRACE_S",
    "REFRESH_S",
    "child_pids",
    "descendants",
    "die_with_this_process",
    "guard_new_children",
    "kill_trees",
    "process_start_time",
]

GRACE_S = 3.0
"""Seconds between SIGTERM and SIGKILL once the parent is gone."""
POLL_S = 0.25
REFRESH_S = 1.0
"""Seconds between looks for the guarded processes' new descendants."""

_lock = threading.Lock()


class _Reaper(NamedTuple):
    owner: int  # the pid of the process it watches
    pid: int
    start: int | None
    pipe: int  # the write end of its command pipe


_reaper: _Reaper | None = None
_guarded: dict[int, tuple[int, bool]] = {}  # pid -> (start time, kill its group too)


def die_with_this_process(pid: int, *, group: bool = False) -> None:
    """Make process ``pid`` and its descendants (and, with ``group``, its process group)
    die when this process ends, whether it exits, crashes or is killed."""
    start = process_start_time(pid)
    if start is None:
        return  # already gone
    with _lock:
        _forget_if_forked()
        _guarded[pid] = (start, group)
        _send(f"guard {pid} {start} {int(group)}\n")


def guard_new_children(seen: set[int]) -> list[int]:
    """Tie to this process's life each child of this process not in ``seen`` that runs a
    program of its own by now (its command line is no longer this process's: it has exec'd,
    or set a process title), except multiprocessing's resource tracker, which cleans up
    after this process and then leaves by itself. Adds them to ``seen``; returns them."""
    own = _cmdline(os.getpid())
    guarded = []
    for pid in sorted(child_pids() - seen):
        cmdline = _cmdline(pid)
        if cmdline is None or cmdline == own:
            continue  # gone, or not started its program yet: look again next time
        seen.add(pid)
        if b"multiprocessing.resource_tracker" not in cmdline:
            die_with_this_process(pid)
            guarded.append(pid)
    return guarded


def child_pids(parent: int | None = None) -> set[int]:
    """The pids of the processes whose parent is ``parent`` (default: this process)."""
    parent = os.getpid() if parent is None else parent
    return {pid for pid, (ppid, _pgid, _start) in _process_table().items() if ppid == parent}


def descendants(pid: int) -> dict[int, int]:
    """The live descendants of process ``pid`` (children, theirs, ...): pid -> start time."""
    table = _process_table()
    if pid not in table:
        return {}
    found = _with_descendants({pid: (table[pid][2], False)}, table)
    return {p: start for p, (start, _group) in found.items() if p != pid}


def kill_trees(pids: Iterable[int], sig: int = signal.SIGKILL) -> None:
    """Send ``sig`` to each process in ``pids`` and to each of its descendants (all found
    before the first is signalled, so none is missed by being orphaned first)."""
    table = _process_table()
    roots = {p: (table[p][2], False) for p in pids if p in table}
    targets = _with_descendants(roots, table)
    _signal_all(((p, s) for p, (s, _g) in targets.items()), sig)


def process_start_time(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot; None if there is no such live
    process): with the pid, it names one process for good."""
    fields = _stat_fields(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


# -- the parent's side ----------------------------------------------------------------------


def _forget_if_forked() -> None:
    """In a forked child, drop the parent's reaper and guards (they are the parent's)."""
    global _reaper
    if _reaper is not None and _reaper.owner != os.getpid():
        os.close(_reaper.pipe)  # the parent's reaper must still see EOF when the parent ends
        _reaper = None
        _guarded.clear()


def _send(line: str) -> None:
    """Tell the reaper ``line``, starting it (again) first if need be; call with ``_lock``."""
    global _reaper
    for _ in range(2):
        if _reaper is not None and not _alive(_reaper):
            os.close(_reaper.pipe)
            _reaper = None
        if _reaper is None:
            _reaper = _start_reaper()
            line = "".join(f"guard {p} {s} {int(g)}\n" for p, (s, g) in _guarded.items())
        try:
            os.write(_reaper.pipe, line.encode())
            return
        except BrokenPipeError:
            os.close(_reaper.pipe)
            _reaper = None
    raise RuntimeError("could not start the process reaper")


def _start_reaper() -> _Reaper:
    read_end, write_end = os.pipe()  # both non-inheritable: only the dup2 copy crosses exec
    try:
        pid = os.posix_spawn(
            sys.executable,
            [sys.executable, "-I", "-S", os.path.abspath(__file__), str(os.getpid())],
            dict(os.environ),
            file_actions=[
                (os.POSIX_SPAWN_DUP2, read_end, 0),
                (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
            ],
            setsid=True,
        )
    except BaseException:
        os.close(write_end)
        raise
    finally:
        os.close(read_end)
    return _Reaper(os.getpid(), pid, process_start_time(pid), write_end)


def _alive(reaper: _Reaper) -> bool:
    """Whether the reaper still runs (collecting it if it has ended)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(reaper.pid, os.WNOHANG)
    return process_start_time(reaper.pid) == reaper.start


# -- /proc ----------------------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    """``/proc/PID/stat`` after the command name: state, ppid, pgrp, ... (field n of
    proc(5) at index n - 3)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            raw = stat.read().decode(errors="replace")
    except OSError:
        return None
    return raw[raw.rfind(")") + 2 :].split()


def _cmdline(pid: int) -> bytes | None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return cmdline.read()
    except OSError:
        return None


def _process_table() -> dict[int, tuple[int, int, int]]:
    """Every live process: pid -> (parent pid, process group, start time)."""
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields is not None and fields[0] not in ("Z", "X"):
                table[int(entry)] = (int(fields[1]), int(fields[2]), int(fields[19]))
    return table


# -- the reaper's side ----------------------------------------------------------------------


def _with_descendants(
    guarded: dict[int, tuple[int, bool]], table: dict[int, tuple[int, int, int]]
) -> dict[int, tuple[int, bool]]:
    """The guarded processes still alive, their descendants and (for ``group`` ones) their
    process groups' members."""
    alive = {p: g for p, g in guarded.items() if p in table and table[p][2] == g[0]}
    leaders = {p for p, (_start, group) in alive.items() if group}
    found = dict(alive)
    grown = True
    while grown:
        grown = False
        for pid, (ppid, pgid, start) in table.items():
            if pid not in found and (ppid in found or pgid in leaders):
                found[pid] = (start, False)
                grown = True
    return found


def _signal_all(targets: Iterable[tuple[int, int]], sig: int) -> None:
    for pid, start in targets:
        if process_start_time(pid) == start:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)


def _reap(guarded: dict[int, tuple[int, bool]], grace_s: float) -> None:
    targets = _with_descendants(guarded, _process_table())
    if not targets:
        return
    _signal_all(((p, s) for p, (s, _g) in targets.items()), signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if all(process_start_time(p) != s for p, (s, _g) in targets.items()):
            return
        time.sleep(0.1)
    targets = _with_descendants(targets, _process_table())
    _signal_all(((p, s) for p, (s, _g) in targets.items()), signal.SIGKILL)


def _read_commands(guarded: dict[int, tuple[int, bool]], pending: bytes) -> bytes:
    """Apply the complete ``guard PID START GROUP`` lines in ``pending``; the rest."""
    *lines, rest = pending.split(b"\n")
    for line in lines:
        words = line.decode().split()
        if len(words) == 4 and words[0] == "guard":
            guarded[int(words[1])] = (int(words[2]), words[3] == "1")
    return rest


def _watch(parent: int, commands: int) -> None:
    guarded: dict[int, tuple[int, bool]] = {}
    pending = b""
    refreshed = time.monotonic()
    parent_alive = True
    while True:
        # Once the parent is gone, only read what it wrote before it went.
        ready, _, _ = select.select([commands], [], [], POLL_S if parent_alive else 0)
        if not ready and not parent_alive:
            break
        if ready:
            chunk = os.read(commands, 65536)
            if not chunk:
                break  # the parent is gone (or let go of us)
            pending = _read_commands(guarded, pending + chunk)
        if time.monotonic() - refreshed >= REFRESH_S:
            guarded = _with_descendants(guarded, _process_table())
            refreshed = time.monotonic()
        parent_alive = parent_alive and os.getppid() == parent
    _reap(guarded, GRACE_S)


def _main(argv: Sequence[str]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _watch(int(argv[1]), sys.stdin.fileno())


if __name__ == "__main__":
    _main(sys.argv)
