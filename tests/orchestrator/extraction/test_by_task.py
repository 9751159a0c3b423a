"""extract_answer: dispatch by task type; no extractor raises on any text."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.extraction.by_task import extract_answer


def test_extract_answer_dispatches_by_task() -> None:
    """extract_answer routes each task type to its extractor with its arguments."""
    assert extract_answer("#### 7", "math").answer == "7"
    assert extract_answer("```\ndef f():\n  pass\n```", "code", entry_point="f").answer
    assert extract_answer("Answer: B", "multiple_choice", choices=["x", "y"]).answer == "B"
    assert extract_answer("first\nlast", "text").answer == "last"


def test_extract_answer_unknown_task() -> None:
    """An unknown task type is a programming error and raises ValueError."""
    with pytest.raises(ValueError, match="no extractor for task type 'poetry'"):
        extract_answer("hi", "poetry")  # type: ignore[arg-type]


@given(
    text=st.text(),
    choices=st.lists(st.text(max_size=10), max_size=6),
    entry_point=st.one_of(st.none(), st.text(alphabet=string.ascii_letters + "_", min_size=1)),
)
def test_extraction_never_raises(text: str, choices: list[str], entry_point: str | None) -> None:
    """Every extractor returns an Extraction (answer xor error) on arbitrary text."""
    for task in ("math", "code", "multiple_choice", "text"):
        result = extract_answer(text, task, choices=choices, entry_point=entry_point)
        assert (result.answer is None) != (result.error is None)
