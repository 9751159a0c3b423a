"""Accuracy-cost curves of arm routing, replayed offline on per-item arm outcomes.

* ``ItemRows``: one way of answering (an arm, a policy at one knob value, ...) as per-item
  correctness and cost, so any statistic can be recomputed on resampled items (bootstrap).
* ``sweep_policy``: a compute-aware rule at each knob value over the items' P(correct).
* ``mixing_frontier``: what random mixing can reach: answering each query with arm A with
  probability q and arm B otherwise costs and scores the straight line between them, so the
  reachable set is the upper concave envelope of the points; spending more is never forced,
  so beyond its best point the frontier stays flat (free disposal).
* ``area_between``: the mean height of one frontier above another over a cost range (the
  integral divided by the range's width): accuracy points gained at equal cost, on average.
* ``cost_to_reach``: the cheapest point reaching an accuracy.
* Cascade over SC arms (cheapest first; a stage whose vote margin reaches ``min_margin``
  answers, the last stage always does) and ``choose_cascade_margin``: the margin chosen
  on training items, the cheapest one whose accuracy reaches the last stage's alone.

Example:
    >>> frontier = mixing_frontier([(1.0, 0.2), (2.0, 0.3), (4.0, 0.8)])
    >>> frontier
    [(1.0, 0.2), (4.0, 0.8)]
    >>> round(frontier_value(frontier, 2.0), 3)
    0.4
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from policies.selectllm.arms import ArmOutcome

__all__ = [
    "ItemRows",
    "area_between",
    "arm_rows",
    "cascade_rows",
    "choose_cascade_margin",
    "cost_to_reach",
    "frontier_value",
    "item_rows",
    "mixing_frontier",
    "oracle_rows",
    "sweep_policy",
]

Point = tuple[float, float]
"""(mean cost, accuracy)."""


@dataclass(frozen=True)
class ItemRows:
    """Per item (in one shared item order): right or not, the cost spent (in the curve's
    metric) and the generated tokens."""

    label: str
    correct: np.ndarray
    cost: np.ndarray
    tokens: np.ndarray
    knob: float | None = None

    @property
    def accuracy(self) -> float:
        return float(self.correct.mean())

    @property
    def mean_cost(self) -> float:
        return float(self.cost.mean())

    def point(self, index: np.ndarray | None = None) -> Point:
        """(mean cost, accuracy), over the items at ``index`` (all by default)."""
        correct = self.correct if index is None else self.correct[index]
        cost = self.cost if index is None else self.cost[index]
        return float(cost.mean()), float(correct.mean())


def item_rows(
    label: str, triples: Sequence[tuple[bool, float, int]], knob: float | None = None
) -> ItemRows:
    """``ItemRows`` from per-item (correct, cost, tokens)."""
    correct = np.array([t[0] for t in triples], dtype=float)
    cost = np.array([t[1] for t in triples], dtype=float)
    tokens = np.array([t[2] for t in triples], dtype=float)
    return ItemRows(label, correct, cost, tokens, knob)


def _cost(outcome: ArmOutcome, cost: str) -> float:
    return outcome.seconds if cost == "seconds" else float(outcome.tokens)


def _triple(outcome: ArmOutcome, cost: str) -> tuple[bool, float, int]:
    return outcome.correct, _cost(outcome, cost), outcome.tokens


def arm_rows(items: Sequence[Mapping[str, ArmOutcome]], arm: str, cost: str) -> ItemRows:
    """One arm answering every item."""
    return item_rows(arm, [_triple(it[arm], cost) for it in items])


def oracle_rows(items: Sequence[Mapping[str, ArmOutcome]], cost: str) -> ItemRows:
    """The ideal router: per item the cheapest right arm (the cheapest arm if none is)."""
    pairs = []
    for it in items:
        by_cost = sorted(it, key=lambda a: (_cost(it[a], cost), a))
        right = [a for a in by_cost if it[a].correct]
        pick = right[0] if right else by_cost[0]
        pairs.append(_triple(it[pick], cost))
    return item_rows("oracle", pairs)


def sweep_policy(
    label: str,
    items: Sequence[Mapping[str, ArmOutcome]],
    probabilities: Sequence[Mapping[str, float]],
    choose: Callable[[Mapping[str, float], float], str],
    knobs: Sequence[float],
    cost: str,
) -> list[ItemRows]:
    """The rule ``choose(p, knob)`` answering every item, at each knob value."""
    if len(items) != len(probabilities):
        raise ValueError(f"{len(items)} items but {len(probabilities)} rows of probabilities")
    sweep = []
    for knob in knobs:
        picks = [it[choose(p, knob)] for it, p in zip(items, probabilities, strict=True)]
        sweep.append(item_rows(label, [_triple(o, cost) for o in picks], knob))
    return sweep


def mixing_frontier(points: Sequence[Point]) -> list[Point]:
    """The upper concave envelope of ``points`` from the cheapest to the most accurate one
    (the frontier is flat after it)."""
    if not points:
        raise ValueError("no points")
    ordered = sorted(set(points), key=lambda p: (p[0], -p[1]))
    hull: list[Point] = []
    for p in ordered:
        if hull and p[0] == hull[-1][0]:
            continue  # same cost, lower accuracy (sorted best first)
        while len(hull) >= 2 and _cross(hull[-2], hull[-1], p) >= 0:
            hull.pop()
        hull.append(p)
    best = max(range(len(hull)), key=lambda i: (hull[i][1], -hull[i][0]))
    return hull[: best + 1]


def _cross(o: Point, a: Point, b: Point) -> float:
    """> 0 when o -> a -> b turns left (a lies below the chord o-b)."""
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def frontier_value(frontier: Sequence[Point], cost: float) -> float:
    """The frontier's accuracy at ``cost`` (NaN below its cheapest point, flat after its
    last)."""
    if cost < frontier[0][0]:
        return float("nan")
    xs = [p[0] for p in frontier]
    ys = [p[1] for p in frontier]
    return float(np.interp(cost, xs, ys))


def area_between(upper: Sequence[Point], lower: Sequence[Point], low: float, high: float) -> float:
    """Mean of ``frontier(upper) - frontier(lower)`` over costs [low, high] (exact: both
    are piecewise linear); both frontiers must start at or below ``low``."""
    if not high > low:
        raise ValueError(f"need high > low, got [{low}, {high}]")
    f_upper, f_lower = mixing_frontier(upper), mixing_frontier(lower)
    if f_upper[0][0] > low + 1e-12 or f_lower[0][0] > low + 1e-12:
        raise ValueError(f"a frontier starts above the range's low end {low}")
    xs = sorted({low, high} | {p[0] for p in (*f_upper, *f_lower) if low < p[0] < high})
    gaps = [frontier_value(f_upper, x) - frontier_value(f_lower, x) for x in xs]
    area = sum((xs[i + 1] - xs[i]) * (gaps[i] + gaps[i + 1]) / 2 for i in range(len(xs) - 1))
    return area / (high - low)


def cost_to_reach(rows: Sequence[ItemRows], accuracy: float) -> ItemRows | None:
    """The cheapest of ``rows`` whose accuracy is at least ``accuracy`` (None if none)."""
    reaching = [r for r in rows if r.point()[1] >= accuracy - 1e-12]
    return min(reaching, key=lambda r: r.point()[0], default=None)


def _cascade_pick(
    item: Mapping[str, ArmOutcome], stages: Sequence[str], min_margin: float
) -> tuple[ArmOutcome, list[str]]:
    ran = []
    for arm in stages:
        ran.append(arm)
        margin = item[arm].margin
        if margin is not None and margin >= min_margin:
            break
    return item[ran[-1]], ran


def cascade_rows(
    items: Sequence[Mapping[str, ArmOutcome]], stages: Sequence[str], min_margin: float, cost: str
) -> ItemRows:
    """The cascade over ``stages`` (SC arms, cheapest first), paying every stage it ran."""
    if not stages:
        raise ValueError("a cascade needs at least one stage")
    pairs = []
    for it in items:
        answer, ran = _cascade_pick(it, stages, min_margin)
        spent = sum(_cost(it[a], cost) for a in ran)
        pairs.append((answer.correct, spent, sum(it[a].tokens for a in ran)))
    return item_rows(f"cascade@{min_margin:.2f}", pairs, min_margin)


def choose_cascade_margin(
    train: Sequence[Mapping[str, ArmOutcome]], stages: Sequence[str], cost: str
) -> float:
    """On training items: the margin whose cascade is cheapest among those as accurate as
    the last stage alone; if none is, the most accurate (cheaper on ties). Candidates are
    the vote margins the stages gave on the training items."""
    if not train:
        raise ValueError("no training items to choose the cascade margin on")
    candidates = sorted(
        {m for it in train for a in stages if (m := it[a].margin) is not None and m > 0}
    ) or [1.0]
    target = arm_rows(train, stages[-1], cost).point()[1]
    scored = [(cascade_rows(train, stages, m, cost).point(), m) for m in candidates]
    reaching = [(c, m) for (c, acc), m in scored if acc >= target - 1e-12]
    if reaching:
        return min(reaching)[1]
    return max(scored, key=lambda s: (s[0][1], -s[0][0]))[1]
