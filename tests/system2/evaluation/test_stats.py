"""Wilson intervals, the exact McNemar test and paired comparisons of runs."""

from __future__ import annotations

import doctest
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from system2.evaluation import stats
from system2.evaluation.stats import (
    bootstrap_interval,
    mcnemar_exact_p,
    paired_comparison,
    significance_label,
    wilson_interval,
)


@st.composite
def counts(draw: st.DrawFn) -> tuple[int, int]:
    n = draw(st.integers(min_value=0, max_value=2000))
    return draw(st.integers(min_value=0, max_value=n)), n


@settings(deadline=None)  # a shared, busy CPU: timings say nothing
@given(counts(), st.floats(min_value=0.5, max_value=0.999))
def test_wilson_contains_estimate_within_unit_interval(
    correct_n: tuple[int, int], confidence: float
) -> None:
    """The interval lies in [0, 1] and contains correct / n."""
    correct, n = correct_n
    low, high = wilson_interval(correct, n, confidence)
    assert 0.0 <= low <= high <= 1.0
    if n:
        assert low - 1e-12 <= correct / n <= high + 1e-12


@settings(deadline=None)  # a shared, busy CPU: timings say nothing
@given(counts())
def test_wilson_wider_at_higher_confidence(correct_n: tuple[int, int]) -> None:
    """A 99% interval contains the 90% one."""
    correct, n = correct_n
    low90, high90 = wilson_interval(correct, n, 0.90)
    low99, high99 = wilson_interval(correct, n, 0.99)
    assert low99 <= low90 + 1e-12
    assert high90 <= high99 + 1e-12


def test_wilson_known_values() -> None:
    """8/10 at 95% is [0.490, 0.943] (Newcombe 1998, Table I style check); 0/n starts at 0."""
    low, high = wilson_interval(8, 10)
    assert (round(low, 3), round(high, 3)) == (0.490, 0.943)
    low, high = wilson_interval(0, 10)
    assert low == 0.0
    assert round(high, 4) == 0.2775
    assert wilson_interval(0, 0) == (0.0, 1.0)


@pytest.mark.parametrize(
    ("correct", "n", "confidence"), [(-1, 5, 0.95), (6, 5, 0.95), (1, 5, 1.0), (1, 5, 0.0)]
)
def test_wilson_rejects_bad_input(correct: int, n: int, confidence: float) -> None:
    """Counts outside 0..n and confidences outside (0, 1) are refused."""
    with pytest.raises(ValueError, match=r"correct|confidence"):
        wilson_interval(correct, n, confidence)


# Exact binomial two-sided values (p = 1/2), as R's binom.test(k, n) prints them:
# binom.test(2, 12)$p.value = 0.03857422, binom.test(0, 5) = 0.0625,
# binom.test(1, 10) = 0.02148438, binom.test(3, 8) = 0.7265625, binom.test(0, 6) = 0.03125.
@pytest.mark.parametrize(
    ("fixed", "broken", "expected"),
    [
        (10, 2, 0.03857422),
        (5, 0, 0.0625),
        (1, 9, 0.02148438),
        (3, 5, 0.7265625),
        (0, 6, 0.03125),
        (4, 4, 1.0),
        (0, 0, 1.0),
    ],
)
def test_mcnemar_matches_exact_binomial_test(fixed: int, broken: int, expected: float) -> None:
    """The p-value equals the exact two-sided binomial test on the discordant pairs."""
    assert mcnemar_exact_p(fixed, broken) == pytest.approx(expected, abs=1e-8)


@settings(deadline=None)  # a shared, busy CPU: timings say nothing
@given(st.integers(0, 400), st.integers(0, 400))
def test_mcnemar_symmetric_and_a_probability(fixed: int, broken: int) -> None:
    """Swapping the runs leaves p unchanged; p lies in (0, 1]."""
    p = mcnemar_exact_p(fixed, broken)
    assert p == mcnemar_exact_p(broken, fixed)
    assert 0.0 < p <= 1.0


@settings(deadline=None)  # a shared, busy CPU: timings say nothing
@given(st.integers(1, 60), st.integers(0, 60))
def test_mcnemar_equals_brute_force_tail(fixed: int, broken: int) -> None:
    """p = sum of binomial(n, 1/2) probabilities no larger than the observed split's."""
    n = fixed + broken
    observed = math.comb(n, fixed)
    brute = sum(math.comb(n, i) for i in range(n + 1) if math.comb(n, i) <= observed) / 2**n
    assert mcnemar_exact_p(fixed, broken) == pytest.approx(min(1.0, brute), rel=1e-12)


runs = st.dictionaries(st.integers(0, 30), st.booleans(), max_size=30)


@settings(deadline=None)  # a shared, busy CPU: timings say nothing
@given(runs, runs)
def test_paired_comparison_symmetric(a: dict[int, bool], b: dict[int, bool]) -> None:
    """Swapping a and b swaps fixed/broken and the accuracies, and keeps n and p."""
    ab = paired_comparison(a, b)
    ba = paired_comparison(b, a)
    assert (ab.n, ab.p_value, ab.significant) == (ba.n, ba.p_value, ba.significant)
    assert (ab.fixed, ab.broken) == (ba.broken, ba.fixed)
    assert set(ab.fixed_ids) == set(ba.broken_ids)
    assert (ab.accuracy_a, ab.only_a) == (ba.accuracy_b, ba.only_b)
    assert ab.correct_b - ab.correct_a == ab.fixed - ab.broken


def test_paired_comparison_counts_items() -> None:
    """Fixed/broken ids, exclusions and the not-significant verdict come out as defined."""
    a = {"x": True, "y": False, "z": False, "w": True, "only_a": True}
    b = {"x": True, "y": True, "z": True, "w": False, "new1": True, "new2": False}
    c = paired_comparison(a, b)
    assert c.n == 4
    assert (c.fixed_ids, c.broken_ids) == (("y", "z"), ("w",))
    assert (c.only_a, c.only_b, c.excluded) == (1, 2, 3)
    assert (c.accuracy_a, c.accuracy_b) == (0.5, 0.75)
    assert c.p_value == pytest.approx(1.0)
    assert not c.significant
    assert "not significant" in c.describe()
    assert c.as_dict()["verdict"] == "not significant"
    assert c.as_dict()["fixed_ids"] == ["y", "z"]


def test_paired_comparison_significant_when_one_sided() -> None:
    """Twelve fixed and none broken is significant (p = 2 / 2**12)."""
    a = {i: False for i in range(12)} | {i: True for i in range(12, 20)}
    b = dict.fromkeys(range(20), True)
    c = paired_comparison(a, b)
    assert c.p_value == pytest.approx(2 / 2**12)
    assert c.significant
    assert significance_label(c.p_value) == "significant"
    assert "(significant)" in c.describe()


def test_paired_comparison_rejects_non_bool() -> None:
    """A correctness that is not a bool names the item and the run."""
    with pytest.raises(TypeError, match=r"run b: item 'q' has correctness 'yes'"):
        paired_comparison({"q": True}, {"q": "yes"})  # type: ignore[dict-item]


def test_bootstrap_interval_brackets_mean_and_is_seeded() -> None:
    """The interval brackets the sample mean, and the same seed gives the same interval."""
    items = [1.0] * 30 + [0.0] * 20

    def mean(xs: object) -> float:
        values = list(xs)  # type: ignore[call-overload]
        return sum(values) / len(values)

    low, high = bootstrap_interval(items, mean, resamples=500)
    assert low < 0.6 < high
    assert (low, high) == bootstrap_interval(items, mean, resamples=500)
    with pytest.raises(ValueError, match="at least one item"):
        bootstrap_interval([], mean)


def test_docstring_examples() -> None:
    """The module's Example block runs and prints what it shows."""
    assert doctest.testmod(stats).failed == 0
