"""Uncertainty for accuracies and for paired comparisons of runs on the same items.

- ``wilson_interval``: the Wilson score interval for a proportion (Wilson 1927); it stays
  inside [0, 1] and behaves at 0/n and n/n, where the normal approximation does not.
- ``paired_comparison``: two runs on the same items, reduced to the items each gets right,
  the items the second run fixed and broke, and McNemar's exact test: under "no
  difference" every discordant item is a fair coin, so the two-sided p-value is a binomial
  tail on the discordant pairs, computed exactly with integers (``mcnemar_exact_p``).
- ``bootstrap_interval``: a percentile bootstrap over items for any statistic, seeded.

Example:
    >>> [round(x, 3) for x in wilson_interval(8, 10)]
    [0.49, 0.943]
    >>> c = paired_comparison({"q1": False, "q2": False, "q3": True},
    ...                       {"q1": True, "q2": True, "q3": True, "q4": True})
    >>> (c.n, c.fixed, c.broken, c.p_value, c.excluded)
    (3, 2, 0, 0.5, 1)
    >>> c.describe()
    '+2 fixed / -0 broken of 3, exact McNemar p=0.5 (not significant)'
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, TypeVar

__all__ = [
    "SIGNIFICANCE_LEVEL",
    "PairedComparison",
    "bootstrap_interval",
    "format_interval",
    "mcnemar_exact_p",
    "paired_comparison",
    "significance_label",
    "wilson_interval",
]

SIGNIFICANCE_LEVEL = 0.05
"""A difference is called significant when the exact McNemar p is below this."""

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")


def wilson_interval(correct: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval for ``correct`` successes out of ``n``; (0.0, 1.0) when
    ``n`` is 0, since nothing was measured."""
    if n < 0 or not 0 <= correct <= n:
        raise ValueError(f"need 0 <= correct <= n, got correct={correct}, n={n}")
    _check_confidence(confidence)
    if n == 0:
        return 0.0, 1.0
    z = NormalDist().inv_cdf((1.0 + confidence) / 2.0)
    p = correct / n
    denominator = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1.0 - p) / n + z * z / (4 * n * n)) / denominator
    # At 0/n and n/n the exact bound is 0 or 1; float noise would leave it a hair off.
    low = 0.0 if correct == 0 else max(0.0, centre - half)
    high = 1.0 if correct == n else min(1.0, centre + half)
    return low, high


def mcnemar_exact_p(fixed: int, broken: int) -> float:
    """Two-sided exact McNemar p-value: the binomial(fixed + broken, 1/2) probability of a
    split at least as uneven as the one seen; 1.0 when there are no discordant pairs."""
    if fixed < 0 or broken < 0:
        raise ValueError(f"counts must be >= 0, got fixed={fixed}, broken={broken}")
    discordant = fixed + broken
    if discordant == 0:
        return 1.0
    tail = sum(math.comb(discordant, i) for i in range(min(fixed, broken) + 1))
    # Integer numerator and denominator: Python's int / int is correctly rounded.
    return min(1.0, 2 * tail / (1 << discordant))


def significance_label(p_value: float, level: float = SIGNIFICANCE_LEVEL) -> str:
    """``"significant"`` when ``p_value < level``, else ``"not significant"``."""
    return "significant" if p_value < level else "not significant"


def format_interval(low: float, high: float) -> str:
    """A 95% interval as the tables print it, e.g. ``[41.2%, 60.3%]``."""
    return f"[{low:.1%}, {high:.1%}]"


@dataclass(frozen=True)
class PairedComparison:
    """Run ``a`` (the baseline) against run ``b`` on the items both have.

    ``fixed``: wrong in ``a``, right in ``b``; ``broken``: right in ``a``, wrong in ``b``.
    ``only_a`` / ``only_b`` count items one run has and the other lacks (excluded).
    """

    n: int
    correct_a: int
    correct_b: int
    accuracy_a: float
    accuracy_b: float
    interval_a: tuple[float, float]
    interval_b: tuple[float, float]
    fixed: int
    broken: int
    fixed_ids: tuple[Hashable, ...]
    broken_ids: tuple[Hashable, ...]
    only_a: int
    only_b: int
    p_value: float
    significant: bool

    @property
    def excluded(self) -> int:
        """Items present in only one of the two runs."""
        return self.only_a + self.only_b

    @property
    def difference(self) -> float:
        """Accuracy of ``b`` minus accuracy of ``a`` on the shared items."""
        return self.accuracy_b - self.accuracy_a

    def describe(self) -> str:
        """One line for a table or a log: fixed, broken, p and whether it is significant."""
        return (
            f"+{self.fixed} fixed / -{self.broken} broken of {self.n}, "
            f"exact McNemar p={self.p_value:.3g} ({significance_label(self.p_value)})"
        )

    def as_dict(self) -> dict[str, Any]:
        """The comparison as JSON-ready data (item ids kept as given)."""
        return {
            "n": self.n,
            "accuracy_a": self.accuracy_a,
            "accuracy_b": self.accuracy_b,
            "interval_a": list(self.interval_a),
            "interval_b": list(self.interval_b),
            "difference": self.difference,
            "fixed": self.fixed,
            "broken": self.broken,
            "fixed_ids": list(self.fixed_ids),
            "broken_ids": list(self.broken_ids),
            "only_a": self.only_a,
            "only_b": self.only_b,
            "p_value": self.p_value,
            "significant": self.significant,
            "verdict": significance_label(self.p_value),
        }


def _as_bool(value: object, item: Hashable, run: str) -> bool:
    if isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
        return bool(value)
    raise TypeError(f"run {run}: item {item!r} has correctness {value!r}; expected a bool")


def paired_comparison(
    a: Mapping[K, bool],
    b: Mapping[K, bool],
    *,
    confidence: float = 0.95,
    level: float = SIGNIFICANCE_LEVEL,
) -> PairedComparison:
    """Compare run ``a`` (baseline) with run ``b`` item by item (item id -> correct).

    Only items in both runs count; the others are excluded and counted in ``only_a`` and
    ``only_b``. Item ids in ``fixed_ids``/``broken_ids`` keep ``a``'s order.
    """
    _check_confidence(confidence)
    shared = [item for item in a if item in b]
    correct_a = correct_b = 0
    fixed_ids: list[Hashable] = []
    broken_ids: list[Hashable] = []
    for item in shared:
        right_a = _as_bool(a[item], item, "a")
        right_b = _as_bool(b[item], item, "b")
        correct_a += right_a
        correct_b += right_b
        if right_b and not right_a:
            fixed_ids.append(item)
        elif right_a and not right_b:
            broken_ids.append(item)
    n = len(shared)
    p_value = mcnemar_exact_p(len(fixed_ids), len(broken_ids))
    return PairedComparison(
        n=n,
        correct_a=correct_a,
        correct_b=correct_b,
        accuracy_a=correct_a / n if n else 0.0,
        accuracy_b=correct_b / n if n else 0.0,
        interval_a=wilson_interval(correct_a, n, confidence),
        interval_b=wilson_interval(correct_b, n, confidence),
        fixed=len(fixed_ids),
        broken=len(broken_ids),
        fixed_ids=tuple(fixed_ids),
        broken_ids=tuple(broken_ids),
        only_a=len(a) - n,
        only_b=len(b) - n,
        p_value=p_value,
        significant=p_value < level,
    )


def bootstrap_interval(
    items: Sequence[T],
    statistic: Callable[[Sequence[T]], float],
    *,
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic`` over ``items`` resampled with
    replacement (resample whole items, e.g. (a_correct, b_correct) pairs, to keep pairing).
    Seeded, so a report prints the same interval twice."""
    _check_confidence(confidence)
    if not items:
        raise ValueError("bootstrap_interval needs at least one item")
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    rng = random.Random(seed)
    values = sorted(statistic(rng.choices(items, k=len(items))) for _ in range(resamples))
    alpha = (1.0 - confidence) / 2.0
    low = values[math.floor(alpha * (resamples - 1))]
    high = values[math.ceil((1.0 - alpha) * (resamples - 1))]
    return low, high
