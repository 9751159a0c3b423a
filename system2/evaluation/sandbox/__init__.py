"""Running untrusted code (model-written, for scoring only), contained.

``check_humaneval`` proves a pass (see ``system2.evaluation.sandbox.humaneval``);
``run_python`` runs one script and reports how it ended; ``containment`` says what this
machine enforces (see ``system2.evaluation.sandbox.containment``).
"""

from __future__ import annotations

from system2.evaluation.sandbox.containment import Containment, Limits, containment
from system2.evaluation.sandbox.humaneval import build_candidate_program, check_humaneval
from system2.evaluation.sandbox.program import run_python
from system2.evaluation.sandbox.results import (
    CheckStatus,
    ProgramResult,
    ProgramStatus,
    SandboxResult,
)

__all__ = [
    "CheckStatus",
    "Containment",
    "Limits",
    "ProgramResult",
    "ProgramStatus",
    "SandboxResult",
    "build_candidate_program",
    "check_humaneval",
    "containment",
    "run_python",
]
