"""What a sandbox run reports: how it ended, why, its output tails, and what was enforced."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["CheckStatus", "ProgramResult", "ProgramStatus", "SandboxResult"]

CheckStatus = Literal["passed", "failed", "timeout", "crashed"]
ProgramStatus = Literal["exited", "timeout", "crashed"]


@dataclass(frozen=True)
class SandboxResult:
    """The verdict on a candidate checked against its tests.

    ``passed`` only when the checker (a process the candidate's code never runs in) proved
    that ``check`` returned, by printing the run's nonce; ``failed`` otherwise, with
    ``reason`` saying why; ``timeout`` when the wall or CPU limit ended it; ``crashed`` when
    the checker itself died by a signal. ``stdout_tail`` is the candidate's output,
    ``stderr_tail`` the checker's errors followed by the candidate's.
    """

    status: CheckStatus
    reason: str
    stdout_tail: str
    stderr_tail: str
    seconds: float
    enforced: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return self.status == "passed"


@dataclass(frozen=True)
class ProgramResult:
    """How a contained program ended: ``exited`` with ``returncode`` (an exit code proves
    nothing about correctness: the program chose it), ``crashed`` by a signal (negative
    ``returncode``), or ``timeout`` (``returncode`` None)."""

    status: ProgramStatus
    returncode: int | None
    stdout_tail: str
    stderr_tail: str
    seconds: float
    enforced: tuple[str, ...]
