"""Accuracy-cost curves on synthetic arm outcomes: the random-mixing frontier, the area
between frontiers, sweeps monotone in their knob, the oracle, and the cascade margin
chosen on training labels."""

from __future__ import annotations

import random

import numpy as np
import pytest

from policies.selectllm.arms import ArmOutcome
from policies.selectllm.compute_aware import choose_by_cost_weight, choose_by_threshold
from policies.selectllm.curve import (
    area_between,
    arm_rows,
    cascade_rows,
    choose_cascade_margin,
    cost_to_reach,
    frontier_value,
    mixing_frontier,
    oracle_rows,
    sweep_policy,
)

COSTS = {"small": 1.0, "mid": 3.0, "large": 9.0}


def outcome(correct: bool, cost: float, margin: float | None = None) -> ArmOutcome:
    return ArmOutcome("1" if correct else "0", correct, int(cost * 10), cost, margin)


def synthetic(n: int, seed: int) -> tuple[list[dict[str, ArmOutcome]], list[dict[str, float]]]:
    """Nested arms (whatever small solves, mid solves; whatever mid solves, large solves),
    and a router whose P is the arm's true chance given a per-item difficulty, plus noise."""
    rng = random.Random(seed)
    items, probs = [], []
    for _ in range(n):
        difficulty = rng.random()
        solved = {"small": difficulty < 0.3, "mid": difficulty < 0.6, "large": difficulty < 0.85}
        items.append({a: outcome(solved[a], COSTS[a]) for a in COSTS})
        probs.append(
            {
                a: min(1.0, max(0.0, limit - difficulty + 0.5 + rng.gauss(0, 0.05)))
                for a, limit in (("small", 0.3), ("mid", 0.6), ("large", 0.85))
            }
        )
    return items, probs


def test_mixing_frontier_is_the_upper_concave_envelope() -> None:
    """Points under a chord and dominated points drop out; past the best point it is flat."""
    points = [(1.0, 0.2), (2.0, 0.3), (4.0, 0.8), (5.0, 0.7), (4.0, 0.1)]
    frontier = mixing_frontier(points)
    assert frontier == [(1.0, 0.2), (4.0, 0.8)]
    assert frontier_value(frontier, 2.5) == pytest.approx(0.5)
    assert frontier_value(frontier, 9.0) == pytest.approx(0.8)
    assert np.isnan(frontier_value(frontier, 0.5))


def test_area_between_frontiers_is_the_mean_gap() -> None:
    """Gap 0 at cost 1 and 0.4 at cost 3: the mean over [1, 3] is 0.2; reversed, -0.2."""
    upper = [(1.0, 0.2), (3.0, 0.8)]
    lower = [(1.0, 0.2), (3.0, 0.4)]
    assert area_between(upper, lower, 1.0, 3.0) == pytest.approx(0.2)
    assert area_between(lower, upper, 1.0, 3.0) == pytest.approx(-0.2)
    with pytest.raises(ValueError, match="starts above"):
        area_between([(2.0, 0.9)], lower, 1.0, 3.0)


def test_sweeps_are_monotone_in_their_knob() -> None:
    """On synthetic items: cost never falls as tau rises, never rises as lambda rises; with
    an informative router and nested arms accuracy follows the cost."""
    items, probs = synthetic(300, seed=3)
    taus = [i / 20 for i in range(21)]
    lambdas = [i / 10 for i in range(31)]
    by_tau = sweep_policy(
        "t", items, probs, lambda p, k: choose_by_threshold(p, COSTS, k), taus, "seconds"
    )
    by_lambda = sweep_policy(
        "l", items, probs, lambda p, k: choose_by_cost_weight(p, COSTS, k), lambdas, "seconds"
    )
    tau_costs = [r.mean_cost for r in by_tau]
    tau_accuracy = [r.accuracy for r in by_tau]
    assert tau_costs == sorted(tau_costs)
    assert tau_costs[0] < tau_costs[-1]
    assert tau_accuracy == sorted(tau_accuracy)
    assert tau_accuracy[0] < tau_accuracy[-1]
    lambda_costs = [r.mean_cost for r in by_lambda]
    assert lambda_costs == sorted(lambda_costs, reverse=True)
    assert lambda_costs[0] > lambda_costs[-1]
    # tau = 0 is the cheapest arm everywhere.
    assert by_tau[0].point() == arm_rows(items, "small", "seconds").point()


def test_an_informative_router_beats_random_mixing() -> None:
    """The threshold policy's frontier lies above the arms' mixing line, and it reaches
    the best arm's accuracy for under 70% of that arm's cost."""
    items, probs = synthetic(300, seed=4)
    sweep = sweep_policy(
        "t",
        items,
        probs,
        lambda p, k: choose_by_threshold(p, COSTS, k),
        [i / 20 for i in range(21)],
        "seconds",
    )
    arms = [arm_rows(items, a, "seconds") for a in COSTS]
    gain = area_between([r.point() for r in sweep], [r.point() for r in arms], 1.0, 9.0)
    assert gain > 0.03  # about 5 points here
    best = arms[-1]
    reached = cost_to_reach(sweep, best.accuracy)
    assert reached is not None
    assert reached.mean_cost < 0.7 * best.mean_cost
    assert cost_to_reach(sweep, 1.01) is None


def test_oracle_takes_the_cheapest_right_arm() -> None:
    """Right if any arm is, paying the cheapest right arm (the cheapest arm if none is)."""
    items = [
        {"small": outcome(False, 1), "mid": outcome(True, 3), "large": outcome(True, 9)},
        {"small": outcome(False, 1), "mid": outcome(False, 3), "large": outcome(False, 9)},
    ]
    oracle = oracle_rows(items, "seconds")
    assert oracle.point() == (2.0, 0.5)


def cascade_items(margins: list[float], small_right: list[bool]) -> list[dict[str, ArmOutcome]]:
    """Two stages; the large stage is always right, the small one as given."""
    return [
        {"small": outcome(right, 1.0, margin), "large": outcome(True, 5.0, 1.0)}
        for margin, right in zip(margins, small_right, strict=True)
    ]


def test_cascade_pays_every_stage_it_ran() -> None:
    """A stage with margin >= min_margin answers; escalating adds the next stage's cost."""
    items = cascade_items([1.0, 0.2], [True, False])
    rows = cascade_rows(items, ["small", "large"], 0.6, "seconds")
    assert list(rows.cost) == [1.0, 6.0]
    assert list(rows.correct) == [1.0, 1.0]


def test_cascade_margin_is_chosen_on_training_labels() -> None:
    """The cheapest margin that matches the last stage's training accuracy: where the small
    model is right whenever its margin is >= 0.6, 0.6 is chosen; where it is right only when
    unanimous, 1.0 is."""
    margins = [1.0, 0.6, 0.6, 0.2, 0.2, 1.0]
    confident = cascade_items(margins, [True, True, True, False, False, True])
    assert choose_cascade_margin(confident, ["small", "large"], "seconds") == 0.6
    cautious = cascade_items(margins, [True, False, True, False, False, True])
    assert choose_cascade_margin(cautious, ["small", "large"], "seconds") == 1.0
    with pytest.raises(ValueError, match="no training items"):
        choose_cascade_margin([], ["small"], "seconds")
