"""Answer extraction: table-driven cases from real-looking completions, plus fuzzing."""

from __future__ import annotations

import string
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.extraction import (
    Extraction,
    extract_answer,
    extract_choice,
    extract_code,
    extract_math,
    extract_text,
    normalize_number,
)

# --- normalize_number --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("42", "42"),
        ("1,234.50", "1234.5"),
        ("1,234,567", "1234567"),
        ("3.0", "3"),
        ("3.", "3"),
        ("-0", "0"),
        ("-0.00", "0"),
        ("+5", "5"),
        ("007", "7"),
        (".5", "0.5"),
        ("-12.340", "-12.34"),
        ("\u22127", "-7"),
        ("$1,234", "1234"),
        (r"\$1,234.00", "1234"),
        ("$-3$", "-3"),
        ("50%", "50"),
        (r"50\%", "50"),
        ("90^\\circ", "90"),
        ("90°", "90"),
        ("6/8", "3/4"),
        ("-6/8", "-3/4"),
        ("4/2", "2"),
        (r"\frac{3}{4}", "3/4"),
        (r"\dfrac{10}{4}", "5/2"),
        (r"\tfrac{8}{2}", "4"),
        (r"-\frac{1}{2}", "-1/2"),
        (r"\frac{-1}{2}", "-1/2"),
        (r"\frac{1.5}{2}", "3/4"),
        (r"\frac34", "3/4"),
        (r"1\,000", "1000"),
        ("1{,}000", "1000"),
        (r"\text{5}", "5"),
        (r"5\text{ cm}", "5"),
        ("  12  ", "12"),
    ],
)
def test_normalize_number_canonical_forms(raw: str, expected: str) -> None:
    """normalize_number maps each spelling of a number to one canonical string."""
    assert normalize_number(raw) == expected


@pytest.mark.parametrize(
    "raw", ["", "abc", "five", "1/0", r"\frac{1}{0}", "1,23", "1e5", "x+1", "3 apples", "--5"]
)
def test_normalize_number_rejects_non_numbers(raw: str) -> None:
    """normalize_number returns None for text that is not exactly one number."""
    assert normalize_number(raw) is None


def test_normalize_number_keeps_decimals_and_fractions_apart() -> None:
    """A decimal stays a decimal and a fraction a fraction, so 0.75 and 3/4 differ (our rule)."""
    assert normalize_number("0.75") == "0.75"
    assert normalize_number("3/4") == "3/4"


def test_normalize_number_is_exact_for_long_numbers() -> None:
    """Long decimals are normalized digit by digit, with no rounding to float or 28 digits."""
    digits = "1234567890" * 5
    assert normalize_number(f"{digits}.500") == f"{digits}.5"


# --- math --------------------------------------------------------------------------------


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


# --- code --------------------------------------------------------------------------------

_TWO_BLOCKS = """Here is my solution:
```python
def add(a, b):
    return a + b
```
And a quick test:
```python
print(add(1, 2))
```
"""


def test_extract_code_prefers_block_with_entry_point() -> None:
    """The block defining the entry point wins over a later block that does not."""
    assert extract_code(_TWO_BLOCKS, "add").answer == "def add(a, b):\n    return a + b\n"


def test_extract_code_without_entry_point_takes_last_block() -> None:
    """With no entry point the last fenced block is the answer."""
    assert extract_code(_TWO_BLOCKS).answer == "print(add(1, 2))\n"


def test_extract_code_takes_last_of_several_definitions() -> None:
    """A revised definition in a later block replaces the first draft."""
    text = "```python\ndef f():\n    return 1\n```\nFixed:\n```\ndef f():\n    return 2\n```"
    assert extract_code(text, "f").answer == "def f():\n    return 2\n"


def test_extract_code_skips_other_languages() -> None:
    """Fences tagged with a non-Python language (```text) are not code answers."""
    text = "```py\ndef f():\n    pass\n```\n```text\noutput here\n```"
    assert extract_code(text).answer == "def f():\n    pass\n"


def test_extract_code_unclosed_fence_runs_to_end() -> None:
    """A completion cut off inside a fence still yields the code written so far."""
    text = "```python\ndef add(a, b):\n    return a + b"
    assert extract_code(text, "add").answer == "def add(a, b):\n    return a + b\n"


def test_extract_code_dedents_indented_fence() -> None:
    """A fenced block indented inside a list item comes back dedented."""
    text = "1. Code:\n   ```python\n   def g():\n       return 0\n   ```"
    assert extract_code(text, "g").answer == "def g():\n    return 0\n"


def test_extract_code_bare_def_with_imports_and_trailing_prose() -> None:
    """Without fences, a bare def is taken with the imports above it and without the prose after."""
    text = (
        "Sure.\nfrom typing import List\n\ndef total(xs: List[int]) -> int:\n"
        "    return sum(xs)\n\n@cache\ndef helper():\n    pass\nThis sums the list."
    )
    assert extract_code(text, "total").answer == (
        "from typing import List\n\ndef total(xs: List[int]) -> int:\n    return sum(xs)\n\n"
        "@cache\ndef helper():\n    pass\n"
    )


def test_extract_code_bare_def_ignores_indented_and_similar_names() -> None:
    """Only a column-0 def of exactly the entry point counts (not a method, not add2)."""
    text = "class A:\n    def add(self):\n        pass\ndef add2():\n    pass"
    assert extract_code(text, "add") == Extraction(
        answer=None, error="no fenced code block or def add( found"
    )


@pytest.mark.parametrize(
    ("text", "entry_point", "error"),
    [
        ("I cannot write this.", "add", "no fenced code block or def add( found"),
        ("I cannot write this.", None, "no fenced code block found"),
        ("```text\nhi\n```", None, "no fenced code block found"),
        ("", "add", "empty completion"),
    ],
)
def test_extract_code_errors(text: str, entry_point: str | None, error: str) -> None:
    """Missing code gives None and an error naming what was looked for."""
    assert extract_code(text, entry_point) == Extraction(answer=None, error=error)


# --- multiple choice ---------------------------------------------------------------------

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


# --- text --------------------------------------------------------------------------------


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


# --- dispatch ----------------------------------------------------------------------------


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


# --- properties --------------------------------------------------------------------------

# Noise without digits, backslashes (no \boxed) or '#' (no ####): it must not add an answer.
_NOISE = st.text(
    alphabet=st.characters(blacklist_categories=("Nd", "Cs"), blacklist_characters="\\#0123456789"),
    max_size=40,
)


def _number_strings() -> st.SearchStrategy[tuple[str, Fraction]]:
    ints = st.integers(min_value=-(10**12), max_value=10**12)
    int_forms = ints.flatmap(
        lambda n: st.sampled_from([(str(n), Fraction(n)), (f"{n:,}", Fraction(n))])
    )
    decimals = st.decimals(
        min_value=-(10**9), max_value=10**9, allow_nan=False, allow_infinity=False, places=4
    ).map(lambda d: (format(d, "f"), Fraction(d)))
    return st.one_of(int_forms, decimals)


def _value(canonical: str) -> Fraction:
    return Fraction(Decimal(canonical)) if "/" not in canonical else Fraction(canonical)


@given(number=_number_strings(), before=_NOISE, after=_NOISE)
def test_answer_is_n_extracts_normalized_n(
    number: tuple[str, Fraction], before: str, after: str
) -> None:
    """For any number n in digit-free noise, "The answer is {n}." extracts normalize(n)."""
    spelled, value = number
    result = extract_math(f"{before}\nThe answer is {spelled}.{after}")
    assert result.answer == normalize_number(spelled)
    assert result.answer is not None
    assert _value(result.answer) == value


@given(number=_number_strings())
def test_normalize_number_is_idempotent_and_exact(number: tuple[str, Fraction]) -> None:
    """Normalizing twice changes nothing, and the canonical form has the same value."""
    spelled, value = number
    once = normalize_number(spelled)
    assert once is not None
    assert normalize_number(once) == once
    assert _value(once) == value


@given(num=st.integers(-1000, 1000), den=st.integers(1, 1000))
def test_fractions_reduce(num: int, den: int) -> None:
    """Any a/b and \\frac{a}{b} normalize to Python's reduced Fraction (an int if whole)."""
    expected = str(Fraction(num, den))
    assert normalize_number(f"{num}/{den}") == expected
    assert normalize_number(rf"\frac{{{num}}}{{{den}}}") == expected


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


_LATEXISH = st.text(alphabet="0123456789.,-+/$%{}\\ abfrcdtxoed#:\n()", max_size=60)


@given(text=_LATEXISH)
def test_math_extraction_never_raises_on_number_like_text(text: str) -> None:
    """extract_math and normalize_number survive dense digit/LaTeX soup without raising."""
    result = extract_math(text)
    assert (result.answer is None) != (result.error is None)
    normalize_number(text)
