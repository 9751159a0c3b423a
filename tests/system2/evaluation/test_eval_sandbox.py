from __future__ import annotations

import socket

import pytest

from system2.evaluation import (
    check_humaneval,
    load_dataset,
    network_isolated,
    run_python,
)


def test_passing_program() -> None:
    """A program that exits 0 passes and its stdout is captured."""
    result = run_python("print('hello')", timeout_s=5, memory_mb=512)
    assert result.status == "passed"
    assert result.returncode == 0
    assert result.stdout_tail.strip() == "hello"


def test_failing_assert() -> None:
    """A failed assert is a 'failed' run with the traceback in stderr."""
    result = run_python("assert 1 == 2, 'nope'", timeout_s=5, memory_mb=512)
    assert result.status == "failed"
    assert result.returncode == 1
    assert "AssertionError: nope" in result.stderr_tail


def test_hanging_program_times_out() -> None:
    """A program that never ends is killed at the wall timeout and reported as 'timeout'."""
    result = run_python("while True:\n    pass\n", timeout_s=1, memory_mb=512)
    assert result.status == "timeout"
    assert result.returncode is None
    assert 1.0 <= result.seconds < 3.0


def test_crashing_program() -> None:
    """A program killed by a signal (os.abort) is 'crashed' with a negative return code."""
    result = run_python("import os\nos.abort()\n", timeout_s=5, memory_mb=512)
    assert result.status == "crashed"
    assert result.returncode == -6


def test_memory_limit() -> None:
    """Allocating past the address-space limit fails in the child, not in the harness."""
    result = run_python(
        "x = bytearray(2 * 1024**3)\nprint('allocated')", timeout_s=5, memory_mb=256
    )
    assert result.status in {"failed", "crashed"}
    assert "allocated" not in result.stdout_tail
    if result.status == "failed":
        assert "MemoryError" in result.stderr_tail


def test_long_output_is_truncated() -> None:
    """Only the tail of a long output is kept."""
    result = run_python("print('x' * 100_000)\nprint('END')", timeout_s=5, memory_mb=512)
    assert result.status == "passed"
    assert len(result.stdout_tail) < 10_000
    assert result.stdout_tail.rstrip().endswith("END")


def test_environment_is_stripped(monkeypatch: pytest.MonkeyPatch) -> None:
    """Proxy variables and the like are not passed to the program."""
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("SECRET_TOKEN", "s3cret")
    result = run_python("import os\nprint(sorted(os.environ))", timeout_s=5, memory_mb=512)
    assert result.status == "passed"
    assert "PROXY" not in result.stdout_tail
    assert "SECRET_TOKEN" not in result.stdout_tail


@pytest.mark.skipif(not network_isolated(), reason="network isolation unavailable here")
def test_network_is_isolated() -> None:
    """With isolation, the program cannot even reach a port listening on the host."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        code = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
        result = run_python(code, timeout_s=5, memory_mb=512)
    assert result.status == "failed"
    assert "Error" in result.stderr_tail


def test_humaneval_canonical_solution_passes() -> None:
    """The canonical solution passes check_humaneval, as a body and as a full function."""
    for item in load_dataset("humaneval", limit=3, seed=0):
        meta = item.metadata
        body = check_humaneval(
            meta["prompt"], meta["canonical_solution"], item.gold, meta["entry_point"]
        )
        assert body.status == "passed", body.stderr_tail
        full = meta["prompt"] + meta["canonical_solution"]
        whole = check_humaneval(meta["prompt"], full, item.gold, meta["entry_point"])
        assert whole.status == "passed", whole.stderr_tail


def test_humaneval_wrong_solution_fails() -> None:
    """A wrong completion fails the problem's tests."""
    item = load_dataset("humaneval", limit=1, seed=0)[0]
    meta = item.metadata
    result = check_humaneval(meta["prompt"], "    return False\n", item.gold, meta["entry_point"])
    assert result.status == "failed"
    assert "AssertionError" in result.stderr_tail
