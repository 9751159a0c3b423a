"""``run_python``: a contained script's ending is reported, never judged a pass."""

from __future__ import annotations

import pytest

from system2.evaluation.sandbox import containment, run_python

isolated = pytest.mark.skipif(
    not containment().isolated, reason="bubblewrap cannot start a sandbox on this machine"
)


def test_exit_code_and_output_are_reported() -> None:
    """A script that prints and exits is reported as exited with its code and output."""
    result = run_python("print('hello')", timeout_s=5, memory_mb=512)
    assert (result.status, result.returncode) == ("exited", 0)
    assert result.stdout_tail.strip() == "hello"


def test_exception_is_a_nonzero_exit_with_its_traceback() -> None:
    """An uncaught exception exits 1 and its traceback is in stderr."""
    result = run_python("assert 1 == 2, 'nope'", timeout_s=5, memory_mb=512)
    assert (result.status, result.returncode) == ("exited", 1)
    assert "AssertionError: nope" in result.stderr_tail


def test_hanging_program_times_out() -> None:
    """An endless loop is stopped at the time limit."""
    result = run_python("while True:\n    pass\n", timeout_s=1, memory_mb=512)
    assert result.status == "timeout"
    assert result.returncode is None
    assert result.seconds < 5


def test_crash_by_signal() -> None:
    """A program killed by a signal is reported as crashed with the signal."""
    result = run_python("import os\nos.abort()\n", timeout_s=5, memory_mb=512)
    assert result.status == "crashed"
    assert result.returncode == -6


def test_memory_limit() -> None:
    """Allocating past the memory limit fails with MemoryError, not the machine."""
    code = "x = bytearray(2_000_000_000)\nprint('allocated')"
    result = run_python(code, timeout_s=5, memory_mb=256)
    assert "allocated" not in result.stdout_tail
    assert result.returncode != 0
    if result.status == "exited":
        assert "MemoryError" in result.stderr_tail


def test_long_output_is_cut_to_its_tail() -> None:
    """Only the tail of a long output is kept."""
    result = run_python("print('x' * 100_000)\nprint('END')", timeout_s=5, memory_mb=512)
    assert len(result.stdout_tail) < 10_000
    assert result.stdout_tail.rstrip().endswith("END")


def test_environment_is_clean(monkeypatch: pytest.MonkeyPatch) -> None:
    """The harness's environment (proxies, secrets) does not reach the program."""
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("SECRET_TOKEN", "s3cr3t")
    result = run_python("import os\nprint(sorted(os.environ))", timeout_s=5, memory_mb=512)
    assert result.status == "exited"
    assert "PROXY" not in result.stdout_tail
    assert "SECRET_TOKEN" not in result.stdout_tail


@isolated
def test_enforced_protections_are_reported() -> None:
    """The result lists what was enforced: namespaces, no network, limits."""
    result = run_python("pass", timeout_s=5, memory_mb=512)
    assert "no network" in result.enforced
    assert "processes die with the sandbox" in result.enforced
    assert any(e.startswith("address space <= 512 MB") for e in result.enforced)
