"""normalize_number: canonical spellings, refusals, exactness, plus fuzzing."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.extraction.numbers import normalize_number
from tests.orchestrator.extraction.number_spellings import exact_value, number_strings


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


@given(number=number_strings())
def test_normalize_number_is_idempotent_and_exact(number: tuple[str, Fraction]) -> None:
    """Normalizing twice changes nothing, and the canonical form has the same value."""
    spelled, value = number
    once = normalize_number(spelled)
    assert once is not None
    assert normalize_number(once) == once
    assert exact_value(once) == value


@given(num=st.integers(-1000, 1000), den=st.integers(1, 1000))
def test_fractions_reduce(num: int, den: int) -> None:
    """Any a/b and \\frac{a}{b} normalize to Python's reduced Fraction (an int if whole)."""
    expected = str(Fraction(num, den))
    assert normalize_number(f"{num}/{den}") == expected
    assert normalize_number(rf"\frac{{{num}}}{{{den}}}") == expected
