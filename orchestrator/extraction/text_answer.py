"""The answer of a free-text task: the last non-empty line."""

from __future__ import annotations

from orchestrator.extraction.base import Extraction

__all__ = ["extract_text"]


def extract_text(text: str) -> Extraction:
    """The last non-empty line, stripped."""
    for line in reversed(text.splitlines()):
        if line.strip():
            return Extraction.ok(line.strip())
    return Extraction.fail("empty completion")
