"""Free-text answers: the last non-empty line."""

from __future__ import annotations

import pytest

from orchestrator.extraction.base import Extraction
from orchestrator.extraction.text_answer import extract_text


@pytest.mark.parametrize(
    ("completion", "expected"),
    [("Thinking...\n\n  Paris  \n\n", "Paris"), ("one line", "one line"), ("a\nb", "b")],
)
def test_extract_text_last_line(completion: str, expected: str) -> None:
    """extract_text returns the last non-empty line, stripped."""
    assert extract_text(completion) == Extraction(answer=expected, error=None)


def test_extract_text_empty() -> None:
    """A blank completion has no text answer."""
    assert extract_text(" \n\t\n") == Extraction(answer=None, error="empty completion")
