"""Math answers: table-driven cases from real-looking completions, plus fuzzing."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.extraction.base import Extraction
from orchestrator.extraction.math_answer import extract_math
from orchestrator.extraction.numbers import normalize_number
from tests.orchestrator.extraction.number_spellings import exact_value, number_strings


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ("Step 1: 6 * 7 = 42.\nStep 2: nothing else.\n#### 42", "42"),
        ("Natalia sold 48 clips in April and 24 in May.\n48 + 24 = 72\n#### 72", "72"),
        ("#### 1,080", "1080"),
        ("#### $18 dollars", "18"),
        (r"So the probability is $\boxed{\frac{3}{4}}$.", "3/4"),
        (r"We get \boxed{\dfrac{6}{8}}.", "3/4"),
        (r"First \boxed{3}, but correcting: \boxed{5}", "5"),
        (r"\boxed{5} and the answer is 7", "5"),
        (r"\boxed{-\frac{3}{4}}", "-3/4"),
        (r"\boxed{x = 5}", "5"),
        (r"\boxed{5 \text{ cm}}", "5"),
        (r"\boxed{12\%}", "12"),
        (r"\boxed{90^\circ}", "90"),
        (r"\boxed{1{,}000}", "1000"),
        (r"\boxed{2\sqrt{3}}", r"2\sqrt{3}"),
        (r"\boxed{\text{yes}}", "yes"),
        (r"\boxed{(1, 2)}", "(1, 2)"),
        (r"\boxed{\frac{\pi}{2}}", r"\frac{\pi}{2}"),
        (r"empty \boxed{} so 9", "9"),
        (r"truncated \boxed{4", "4"),
        ("The answer is $1,234.", "1234"),
        ("The answer is 42 cm.", "42"),
        ("The answer is 3.50 dollars.", "3.5"),
        ("The temperature fell 12 degrees to -5. The answer is -5.", "-5"),
        ("THE ANSWER IS 17", "17"),
        ("Final answer: 2,500", "2500"),
        ("The answer is: 3/4", "3/4"),
        ("The answer is 10%.", "10"),
        ("The answer is **18**.", "18"),
        ("answer: 4\nwait, recheck.\nThe answer is 5.", "5"),
        ("The answer is 6.\nSome remarks without numbers.", "6"),
        ("He pays $12 for 3 pens, so each costs $4.", "4"),
        ("She ends with -3 apples", "-3"),
        ("It went from 2024-01-05", "5"),
        ("x = \u22127", "-7"),
        ("#### Step 2: recount\nSo there are 17 left.", "17"),
        ("The answer is \u00bd or 0.5", "0.5"),
    ],
)
def test_extract_math_cases(completion: str, expected: str) -> None:
    """extract_math picks the final answer by rule priority and normalizes it."""
    assert extract_math(completion) == Extraction(answer=expected, error=None)


@pytest.mark.parametrize(
    ("completion", "error"),
    [
        ("I am not sure how to solve this.", "no number found in completion"),
        ("", "empty completion"),
        ("  \n\t", "empty completion"),
        ("The answer is 1/0", "no number found in completion"),
    ],
)
def test_extract_math_reports_missing_answer(completion: str, error: str) -> None:
    """With no number in the completion, the answer is None and the error says why."""
    assert extract_math(completion) == Extraction(answer=None, error=error)


# Noise without digits, backslashes (no \boxed) or '#' (no ####): it must not add an answer.
_NOISE = st.text(
    alphabet=st.characters(blacklist_categories=("Nd", "Cs"), blacklist_characters="\\#0123456789"),
    max_size=40,
)


@given(number=number_strings(), before=_NOISE, after=_NOISE)
def test_answer_is_n_extracts_normalized_n(
    number: tuple[str, Fraction], before: str, after: str
) -> None:
    """For any number n in digit-free noise, "The answer is {n}." extracts normalize(n)."""
    spelled, value = number
    result = extract_math(f"{before}\nThe answer is {spelled}.{after}")
    assert result.answer == normalize_number(spelled)
    assert result.answer is not None
    assert exact_value(result.answer) == value


_LATEXISH = st.text(alphabet="0123456789.,-+/$%{}\\ abfrcdtxoed#:\n()", max_size=60)


@given(text=_LATEXISH)
def test_math_extraction_never_raises_on_number_like_text(text: str) -> None:
    """extract_math and normalize_number survive dense digit/LaTeX soup without raising."""
    result = extract_math(text)
    assert (result.answer is None) != (result.error is None)
    normalize_number(text)
