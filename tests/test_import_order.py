"""Every package imports cleanly on its own, whichever is imported first."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "module", ["policies", "orchestrator", "workers", "policies.base", "orchestrator.config"]
)
def test_module_imports_first_in_a_fresh_interpreter(module: str) -> None:
    """Importing the module first in a new interpreter raises no circular-import error."""
    result = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
