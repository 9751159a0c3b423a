"""Hypothesis strategies for spelled numbers and their exact values."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from hypothesis import strategies as st

__all__ = ["exact_value", "number_strings"]


def number_strings() -> st.SearchStrategy[tuple[str, Fraction]]:
    ints = st.integers(min_value=-(10**12), max_value=10**12)
    int_forms = ints.flatmap(
        lambda n: st.sampled_from([(str(n), Fraction(n)), (f"{n:,}", Fraction(n))])
    )
    decimals = st.decimals(
        min_value=-(10**9), max_value=10**9, allow_nan=False, allow_infinity=False, places=4
    ).map(lambda d: (format(d, "f"), Fraction(d)))
    return st.one_of(int_forms, decimals)


def exact_value(canonical: str) -> Fraction:
    return Fraction(Decimal(canonical)) if "/" not in canonical else Fraction(canonical)
