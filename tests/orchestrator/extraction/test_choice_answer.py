"""Multiple-choice answers: letters, choice texts, cues and refusals."""

from __future__ import annotations

import pytest

from orchestrator.extraction.base import Extraction
from orchestrator.extraction.choice_answer import extract_choice

_CAPITALS = ("Paris", "London", "Berlin", "Madrid")


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ("France's capital is Paris... The answer is (A).", "A"),
        ("The answer is (b)", "B"),
        ("Answer: C", "C"),
        ("**Answer:** B) London", "B"),
        ("So the answer is: **D**", "D"),
        ("The answer is A.", "A"),
        ("Let me think about each option.\n(D)", "D"),
        ("Reasoning...\nC.", "C"),
        ("B. London", "B"),
        ("Paris", "A"),
        ("The answer is Berlin.", "C"),
        ("The answer is madrid", "D"),
        (r"Thus $\boxed{C}$", "C"),
        (r"\boxed{\text{(D)}}", "D"),
        ("Answer: A\nOn reflection, the answer is (C).", "C"),
        ("(A) is wrong.\nB", "B"),
    ],
)
def test_extract_choice_cases(completion: str, expected: str) -> None:
    """extract_choice finds the chosen letter from cues, lone letters or choice text."""
    assert extract_choice(completion, _CAPITALS) == Extraction(answer=expected, error=None)


@pytest.mark.parametrize(
    "completion",
    [
        "The answer is (E).",  # out of range for four choices
        "Answer: Because London is big",  # a word, not a letter
        "I think it is London, probably.",
        "B. London is the biggest city",
        "",
    ],
)
def test_extract_choice_rejects(completion: str) -> None:
    """No valid letter or exact choice text gives None and an error."""
    result = extract_choice(completion, _CAPITALS)
    assert result.answer is None
    assert result.error


def test_extract_choice_error_names_letter_range() -> None:
    """The error names the valid letters, so a reader sees the choice count."""
    assert extract_choice("no idea", _CAPITALS).error == (
        "no choice letter (A-D) or choice text found in completion"
    )


def test_extract_choice_prefers_choice_text_over_letter_look_alike() -> None:
    """A choice whose text starts like a letter ("A dog") is matched by its text."""
    assert extract_choice("The answer is A dog.", ("a cat", "A dog")).answer == "B"


def test_extract_choice_without_choices_accepts_any_letter() -> None:
    """With no choices listed, any letter A-Z is valid."""
    assert extract_choice("The answer is (Q)").answer == "Q"
