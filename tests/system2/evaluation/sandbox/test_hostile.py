"""Hostile candidates: each tries to be scored as passing (or to escape) while wrong.

Every one must be scored ``failed`` or ``timeout``, and nothing it started may outlive the
check. The problem: ``add(a, b)``; every candidate returns the wrong ``a - b``.
"""

from __future__ import annotations

import socket
import time
import uuid
from pathlib import Path

import pytest

from system2.evaluation.sandbox import check_humaneval, containment

pytestmark = pytest.mark.skipif(
    not containment().isolated, reason="bubblewrap cannot start a sandbox on this machine"
)

PROMPT = 'def add(a, b):\n    """Add two numbers."""\n'
TEST = "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(5, 7) == 12\n"
WRONG = "    return a - b\n"


def _check(completion: str, timeout_s: float = 5.0) -> str:
    result = check_humaneval(PROMPT, completion, TEST, "add", timeout_s=timeout_s, memory_mb=512)
    assert result.status in ("failed", "timeout"), (result.status, result.reason)
    return result.status


def _gone(marker: str, within_s: float = 5.0) -> bool:
    """True once no process carries ``marker`` in its command line (killed processes take
    a moment to be reaped)."""
    deadline = time.monotonic() + within_s
    while _processes_with(marker):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _processes_with(marker: str) -> list[int]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if marker.encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return found


EXITS = {
    "sys.exit(0) at import": "import sys\nsys.exit(0)\n",
    "os._exit(0) at import": "import os\nos._exit(0)\n",
    "raise SystemExit at import": "raise SystemExit\n",
    "os._exit(0) during the call": "    import os\n    os._exit(0)\n",
}


@pytest.mark.parametrize("attack", sorted(EXITS))
def test_exiting_with_success_is_not_a_pass(attack: str) -> None:
    """Exiting 0 (before or during the tests) is a failure, not a pass."""
    code = EXITS[attack]
    completion = code if code.startswith("    ") else WRONG + code
    _check(completion)


def test_patching_builtins_and_the_checker_is_not_a_pass() -> None:
    """Patching builtins, ``check`` or AssertionError changes only the candidate's process."""
    completion = WRONG + (
        "import builtins, sys\n"
        "builtins.AssertionError = type('Nothing', (Exception,), {})\n"
        "main = sys.modules['__main__']\n"
        "main.check = lambda candidate: None\n"
        "builtins.print = lambda *a, **k: None\n"
    )
    _check(completion)


def test_an_object_equal_to_everything_is_not_a_pass() -> None:
    """A result whose ``__eq__`` always says True cannot cross the sandbox."""
    completion = (
        "    class Anything:\n"
        "        def __eq__(self, other):\n            return True\n"
        "    return Anything()\n"
    )
    _check(completion)


def test_printing_forged_pass_tokens_is_not_a_pass() -> None:
    """Printing anything that looks like a pass (words, hex nonces) proves nothing."""
    completion = WRONG + (
        "import secrets\n"
        "for _ in range(100):\n    print(secrets.token_hex(16))\n"
        "print('passed')\nprint('check() returned')\n"
    )
    _check(completion)


def test_closing_stdout_and_stderr_is_not_a_pass() -> None:
    """A candidate that closes its output streams still fails."""
    _check(WRONG + "import os\nos.close(1)\nos.close(2)\n")


def test_reading_other_processes_is_not_possible(monkeypatch: pytest.MonkeyPatch) -> None:
    """The harness's environment and other processes (the checker's nonce) are out of sight."""
    secret = f"secret-{uuid.uuid4().hex}"
    monkeypatch.setenv("SYSTEM2_TEST_SECRET", secret)
    completion = WRONG + (
        "import os\n"
        "print(dict(os.environ))\n"
        "for pid in os.listdir('/proc'):\n"
        "    if pid.isdigit():\n"
        "        for name in ('environ', 'cmdline'):\n"
        "            try:\n"
        "                print(open(f'/proc/{pid}/{name}', 'rb').read())\n"
        "            except OSError:\n"
        "                pass\n"
    )
    result = check_humaneval(PROMPT, completion, TEST, "add", timeout_s=5, memory_mb=512)
    assert result.status == "failed"
    assert secret not in result.stdout_tail


def test_writing_outside_the_sandbox_is_not_possible(tmp_path: Path) -> None:
    """Writes outside the sandbox's own directory fail; the file never appears."""
    target = tmp_path / "escaped.txt"
    completion = WRONG + (
        f"for path in [{str(target)!r}, '/etc/escaped', '/usr/escaped']:\n"
        "    try:\n        open(path, 'w').write('x')\n    except OSError:\n        pass\n"
    )
    _check(completion)
    assert not target.exists()
    assert not Path("/usr/escaped").exists()


def test_opening_a_socket_reaches_nothing() -> None:
    """No network: a listener on the host's loopback receives no connection."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        port = listener.getsockname()[1]
        completion = WRONG + (
            "import socket\n"
            "try:\n"
            f"    socket.create_connection(('127.0.0.1', {port}), timeout=1)\n"
            "    print('CONNECTED')\n"
            "except OSError as exc:\n"
            "    print('no network:', exc)\n"
        )
        result = check_humaneval(PROMPT, completion, TEST, "add", timeout_s=5, memory_mb=512)
        assert result.status == "failed"
        assert "CONNECTED" not in result.stdout_tail
        with pytest.raises(BlockingIOError):
            listener.accept()


def test_a_setsid_grandchild_does_not_outlive_the_check() -> None:
    """A detached (setsid) grandchild is killed with the sandbox."""
    marker = f"system2-hostile-{uuid.uuid4().hex}"
    completion = WRONG + (
        "import subprocess, sys\n"
        "subprocess.Popen([sys.executable, '-c', "
        f"'import os, time; os.setsid(); time.sleep(60)', {marker!r}], start_new_session=True)\n"
    )
    _check(completion)
    assert _gone(marker)


def test_a_spawn_bomb_is_limited_and_leaves_nothing_behind() -> None:
    """Spawning processes without end hits the process limit; none survives the check."""
    marker = f"system2-hostile-{uuid.uuid4().hex}"
    completion = WRONG + (
        "import subprocess, sys\n"
        "started = 0\n"
        "while started < 10_000:\n"
        "    try:\n"
        "        subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)', "
        f"{marker!r}])\n"
        "        started += 1\n"
        "    except OSError:\n"
        "        break\n"
        "print('started', started)\n"
    )
    result = check_humaneval(PROMPT, completion, TEST, "add", timeout_s=10, memory_mb=512)
    assert result.status in ("failed", "timeout")
    started = [line for line in result.stdout_tail.splitlines() if line.startswith("started")]
    if started:
        assert int(started[-1].split()[1]) <= 64
    assert _gone(marker)


def test_a_fork_bomb_times_out_and_leaves_nothing_behind() -> None:
    """``os.fork`` in a loop is held by the process limit and ended at the time limit."""
    before = len(list(Path("/proc").glob("[0-9]*")))
    completion = (
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    )
    _check(completion, timeout_s=3)
    deadline = time.monotonic() + 5
    while len(list(Path("/proc").glob("[0-9]*"))) > before + 5:
        assert time.monotonic() < deadline, "fork bomb processes outlived the check"
        time.sleep(0.1)


def test_a_memory_bomb_is_a_failure() -> None:
    """Allocating without bound fails inside the memory limit."""
    _check("    x = bytearray(8 * 1024**3)\n    return a - b\n")


def test_ignoring_sigterm_in_an_endless_loop_times_out() -> None:
    """A candidate that ignores SIGTERM and never returns is killed at the time limit."""
    completion = (
        "    import signal\n"
        "    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "    while True:\n        pass\n"
    )
    assert _check(completion, timeout_s=2) == "timeout"


def test_nothing_is_left_running_after_a_normal_check() -> None:
    """After a check, no sandbox process of it remains (PID namespace torn down)."""
    marker = f"system2-hostile-{uuid.uuid4().hex}"
    completion = WRONG + (
        "import subprocess, sys\n"
        f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)', {marker!r}])\n"
    )
    _check(completion)
    assert _gone(marker)
