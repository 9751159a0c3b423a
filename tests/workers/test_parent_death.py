"""``die_with_this_process``: guarded processes die with the process that guarded them.

Each test runs a parent Python process that starts ``sleep`` processes, guards them and
prints their pids, then ends that parent (SIGKILL, or a normal exit) and checks that no
guarded process, nor any descendant or group member of one, is left.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

from workers.parent_death import (
    GRACE_S,
    child_pids,
    descendants,
    kill_trees,
    process_start_time,
)

PARENT = """
import subprocess, sys, time
from workers.parent_death import REFRESH_S, die_with_this_process
{start}
print(" ".join(str(p) for p in pids), flush=True)
{finish}
"""

TREE = """
tree = subprocess.Popen(["sh", "-c", "sleep 60 & sleep 60 & wait"])
die_with_this_process(tree.pid)
time.sleep(REFRESH_S + 0.5)  # the reaper has seen the sleeps the shell started
pids = [tree.pid]
"""

STUBBORN = """
tree = subprocess.Popen(["sh", "-c", "sleep 60 & sleep 60 & wait"])
stubborn = subprocess.Popen(["sh", "-c", "trap '' TERM; sleep 60 & wait"])
die_with_this_process(tree.pid)
die_with_this_process(stubborn.pid)
time.sleep(0.5)  # the shells have started their sleeps
pids = [tree.pid, stubborn.pid]
"""

GROUP = """
leader = subprocess.Popen(["sh", "-c", "sleep 60 & wait"], process_group=0)
member = subprocess.Popen(["sleep", "60"], process_group=leader.pid)
die_with_this_process(leader.pid, group=True)
pids = [leader.pid, member.pid]
"""


@contextlib.contextmanager
def parent(
    start: str, finish: str = "time.sleep(60)"
) -> Iterator[tuple[subprocess.Popen[str], dict[int, int]]]:
    """The running parent (in a session of its own) and the processes it guards and their
    descendants (pid -> start time, recorded before the parent ends); any still alive
    afterwards are killed."""
    process = subprocess.Popen(
        [sys.executable, "-c", PARENT.format(start=start, finish=finish)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
        # Ctrl-C must reach it even when this run inherited SIGINT ignored (a shell's `cmd &`)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    watched: dict[int, int] = {}
    assert process.stdout is not None
    try:
        roots = [int(p) for p in process.stdout.readline().split()]
        for pid in roots:
            watched[pid] = process_start_time(pid) or 0
            watched.update(descendants(pid))
        assert len(watched) > len(roots)  # the sleeps under the roots are watched too
        yield process, watched
    finally:
        process.kill()
        process.wait()
        process.stdout.close()
        for pid in watched:
            if process_start_time(pid) == watched[pid]:
                os.kill(pid, signal.SIGKILL)


def _survivors(watched: dict[int, int], within_s: float) -> list[int]:
    deadline = time.monotonic() + within_s
    while True:
        alive = [p for p, s in watched.items() if process_start_time(p) == s]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


def test_sigkilled_parent_takes_guarded_processes_and_descendants_along() -> None:
    """A SIGKILLed parent's guarded processes and their children die (SIGTERM first, then
    SIGKILL for one that ignores SIGTERM), within the grace period and a poll."""
    with parent(STUBBORN) as (process, watched):
        process.kill()
        assert _survivors(watched, within_s=GRACE_S + 3) == []


def test_group_guard_takes_the_process_group_along() -> None:
    """Guarded with ``group=True``, a process group leader's whole group dies with the parent,
    members that are not its children included."""
    with parent(GROUP) as (process, watched):
        process.kill()
        assert _survivors(watched, within_s=GRACE_S + 3) == []


def test_parent_that_exits_normally_leaves_nothing_behind() -> None:
    """A parent that exits without stopping what it guards still leaves nothing running."""
    with parent(TREE, finish="sys.exit(0)") as (process, watched):
        assert process.wait(timeout=10) == 0
        assert _survivors(watched, within_s=GRACE_S + 3) == []


def test_ctrl_c_to_the_process_group_does_not_stop_the_reaper() -> None:
    """A SIGINT to the parent's whole process group (Ctrl-C in a terminal) does not reach the
    reaper, which runs in a session of its own, and the guarded processes' children, which
    outlive their shell, are reaped too."""
    with parent(TREE) as (process, watched):
        reapers = child_pids(process.pid) - set(watched)
        assert len(reapers) == 1
        assert os.getsid(reapers.pop()) != os.getsid(process.pid)
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=10)
        assert _survivors(watched, within_s=GRACE_S + 3) == []


def test_kill_trees_takes_descendants_along() -> None:
    """``kill_trees`` ends a process and its children, found before the parent goes."""
    shell = subprocess.Popen(["sh", "-c", "sleep 60 & sleep 60 & wait"])
    try:
        time.sleep(0.3)
        tree = {shell.pid: process_start_time(shell.pid) or 0, **descendants(shell.pid)}
        assert len(tree) == 3
        kill_trees([shell.pid])
        shell.wait(timeout=5)
        assert _survivors(tree, within_s=2) == []
    finally:
        shell.kill()
        shell.wait()
