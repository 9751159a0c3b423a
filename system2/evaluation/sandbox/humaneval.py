"""``check_humaneval``: a HumanEval completion against its tests, with a proven verdict.

Two sandboxes per check. The candidate's sandbox loads the prompt and completion and answers
calls of the entry point. The checker's sandbox runs the problem's own ``check(candidate)``
(prompt + tests: data-set code, never the completion) with ``candidate`` forwarding each
call to the candidate's sandbox over a pair of pipes, values passed as plain data. Only
when ``check`` returns does the checker print the run's nonce, which it reads from its
stdin and the candidate's code never sees. The parent counts a pass only when that exact
line comes back; an exit code, a printed word or a patched checker proves nothing.
"""

from __future__ import annotations

import math
import os
import re
import secrets
import signal
import tempfile
import time
from pathlib import Path

import structlog

from system2.evaluation.sandbox.containment import Limits, containment
from system2.evaluation.sandbox.process import ContainedProcess
from system2.evaluation.sandbox.results import CheckStatus, SandboxResult

__all__ = ["build_candidate_program", "check_humaneval"]

log = structlog.get_logger(__name__)


def build_candidate_program(problem_prompt: str, completion_code: str, entry_point: str) -> str:
    """The candidate's module: prompt + completion. When the completion holds the whole
    function (a top-level ``def entry_point``) it is placed after the prompt, whose
    docstring-only stub it then replaces while the prompt's imports and helpers stay."""
    defines = re.search(
        rf"^(?:async\s+)?def\s+{re.escape(entry_point)}\s*\(", completion_code, re.M
    )
    return f"{problem_prompt}\n{completion_code}" if defines else problem_prompt + completion_code


def check_humaneval(
    problem_prompt: str,
    completion_code: str,
    test: str,
    entry_point: str,
    timeout_s: float = 10.0,
    memory_mb: int = 1024,
) -> SandboxResult:
    """Run a HumanEval problem's tests against a completion (see the module docstring)."""
    if timeout_s <= 0 or memory_mb <= 0:
        raise ValueError("timeout_s and memory_mb must be positive")
    contained = containment()
    limits = Limits(memory_mb=memory_mb, cpu_s=math.ceil(timeout_s) + 1)
    nonce = secrets.token_hex(16)
    with (
        tempfile.TemporaryDirectory(prefix="system2-candidate-") as candidate_dir,
        tempfile.TemporaryDirectory(prefix="system2-checker-") as checker_dir,
    ):
        candidate_work, checker_work = Path(candidate_dir), Path(checker_dir)
        program = build_candidate_program(problem_prompt, completion_code, entry_point)
        (candidate_work / "candidate.py").write_text(program, encoding="utf-8")
        (checker_work / "tests.py").write_text(f"{problem_prompt}\n\n{test}\n", encoding="utf-8")
        calls_r, calls_w = os.pipe()
        replies_r, replies_w = os.pipe()
        nonce_r, nonce_w = os.pipe()
        start = time.monotonic()
        try:
            candidate = ContainedProcess.start(
                contained,
                candidate_work,
                limits,
                ["serve", "candidate.py", entry_point, str(calls_r), str(replies_w)],
                pass_fds=(calls_r, replies_w),
            )
            checker = ContainedProcess.start(
                contained,
                checker_work,
                limits,
                ["check", "tests.py", entry_point, str(calls_w), str(replies_r)],
                stdin=nonce_r,
                pass_fds=(calls_w, replies_r),
            )
        finally:
            for fd in (calls_r, calls_w, replies_r, replies_w, nonce_r):
                os.close(fd)
        with os.fdopen(nonce_w, "w") as stdin:
            stdin.write(nonce + "\n")
        try:
            finished = checker.wait_until(start + timeout_s)
        finally:
            checker_code = checker.kill()
            candidate_code = candidate.kill()
        proven = finished and checker.stdout_tail().strip() == nonce
        status, reason = _verdict(proven, finished, checker_code, candidate_code, checker)
        result = SandboxResult(
            status=status,
            reason=reason,
            stdout_tail=candidate.stdout_tail(),
            stderr_tail="\n".join(
                part for part in (checker.stderr_tail(), candidate.stderr_tail()) if part
            ),
            seconds=time.monotonic() - start,
            enforced=contained.enforced(limits),
        )
    log.debug("sandbox.check", status=status, reason=reason, seconds=round(result.seconds, 3))
    return result


def _verdict(
    proven: bool,
    finished: bool,
    checker_code: int,
    candidate_code: int,
    checker: ContainedProcess,
) -> tuple[CheckStatus, str]:
    if proven:
        return "passed", "check() returned"
    if not finished or checker_code == -signal.SIGXCPU:
        return "timeout", "the tests did not finish within the time limit"
    if checker_code < 0:
        return "crashed", f"the checker was killed by signal {-checker_code}"
    last = _last_line(checker.stderr_tail())
    if last:
        return "failed", last
    return "failed", f"no pass proof from the checker (exit code {checker_code})"


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""
