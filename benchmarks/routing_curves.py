"""The routing benchmark's test-set analysis: every way of answering as per-item rows on
the same test items (``policies.selectllm.curve``), the statistics over them, and the plot.

See ``benchmarks.routing`` for what is measured; this module turns collected outcomes and
trained routers into the table rows, the summary (with intervals and paired tests) and
``routing.png``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from benchmarks.common import Comparison
from orchestrator.strategies.config import SelfConsistencyConfig
from policies.selectllm.arms import ArmConfig, ArmOutcome
from policies.selectllm.compute_aware import choose_by_cost_weight, choose_by_threshold
from policies.selectllm.curve import (
    ItemRows,
    area_between,
    arm_rows,
    cascade_rows,
    choose_cascade_margin,
    cost_to_reach,
    item_rows,
    mixing_frontier,
    oracle_rows,
    sweep_policy,
)
from policies.selectllm.policy import SelectionRule, SelectLLMPolicy
from policies.selectllm.replay import ReplayItem, replay_items, selection_outcomes
from policies.selectllm.router import QueryRouter
from policies.selectllm.rules import Selection
from system2.evaluation import EvalItem, score_item
from system2.evaluation.stats import bootstrap_interval, wilson_interval

__all__ = ["COST_WEIGHTS", "THRESHOLDS", "CurveInputs", "curve_report"]

THRESHOLDS = [i / 40 for i in range(41)]
COST_WEIGHTS = [i / 40 for i in range(41)] + [1.5, 2.0, 3.0, 5.0, 10.0]
GOAL_COST_SHARE = 0.6
RULES: tuple[SelectionRule, ...] = ("maxconf", "labelled_maxconf", "weighted_maxconf")


@dataclass(frozen=True)
class CurveInputs:
    """Arm outcomes on training and test items, the test label records (for the
    per-model replay), the two trained routers, the cost metric and samples per pair."""

    arms: Sequence[ArmConfig]
    train: Mapping[str, Mapping[str, ArmOutcome]]
    test: Mapping[str, Mapping[str, ArmOutcome]]
    test_records: Sequence[Mapping[str, Any]]
    test_items: Mapping[str, EvalItem]
    arm_router: QueryRouter
    model_router: QueryRouter
    cost: str
    samples: int


def _cascade_stages(inputs: CurveInputs) -> list[str]:
    """Per model its largest SC arm, cheapest (mean training cost) first."""
    largest: dict[str, ArmConfig] = {}
    for arm in inputs.arms:
        if isinstance(arm.strategy, SelfConsistencyConfig):
            best = largest.get(arm.model)
            if best is None or arm.samples > best.samples:
                largest[arm.model] = arm
    train = list(inputs.train.values())
    mean = {a.name: arm_rows(train, a.name, inputs.cost).mean_cost for a in largest.values()}
    return sorted(mean, key=lambda a: mean[a])


def _judge(inputs: CurveInputs) -> Callable[[str, str | None], bool]:
    judged: dict[str, dict[str, bool]] = {}
    for r in inputs.test_records:
        judged.setdefault(r["item"], {}).update(r.get("judged", {}))

    def judge(item_id: str, answer: str | None) -> bool:
        if answer is None:
            return False
        known = judged.get(item_id, {})
        if answer in known:
            return known[answer]
        return score_item(inputs.test_items[item_id], answer).correct

    return judge


def _selectllm_rows(inputs: CurveInputs, ids: Sequence[str]) -> list[ItemRows]:
    """The all-models vote and the three rules, replayed on pooled SC@k votes."""
    router = inputs.model_router
    records = [r for r in inputs.test_records if r["item"] in set(ids)]
    items = {i.id: i for i in replay_items(records, router.models)}
    confidences = dict(zip(ids, router.confidences([items[i].question for i in ids]), strict=True))
    strategy = SelfConsistencyConfig(n=inputs.samples)

    def rows(label: str, select: Callable[[ReplayItem], Selection]) -> ItemRows:
        outcomes = selection_outcomes([items[i] for i in ids], select, _judge(inputs))
        per_item = [outcomes[i] for i in ids]
        seconds = inputs.cost == "seconds"
        return item_rows(label, [(c, s if seconds else float(t), t) for c, s, t in per_item])

    def routed(policy: SelectLLMPolicy) -> Callable[[ReplayItem], Selection]:
        return lambda item: policy.select(confidences[item.id])

    result = [rows("all (vote)", lambda item: Selection(router.models))]
    result += [rows(rule, routed(SelectLLMPolicy(router, rule, strategy))) for rule in RULES]
    return result


def _summary_row(kind: str, rows: ItemRows) -> dict[str, Any]:
    n, right = len(rows.correct), int(rows.correct.sum())
    return {
        "kind": kind,
        "name": f"{rows.label}={rows.knob:g}" if kind == "compute_aware" else rows.label,
        "accuracy": rows.accuracy,
        "accuracy_ci": list(wilson_interval(right, n)),
        "cost": rows.mean_cost,
        "tokens": float(rows.tokens.mean()),
    }


def _pareto(rows: Sequence[ItemRows]) -> list[ItemRows]:
    """Sweep points no other point beats (cheaper and at least as accurate), deduplicated."""
    kept: list[ItemRows] = []
    for r in sorted(rows, key=lambda r: (r.mean_cost, -r.accuracy)):
        if not kept or r.accuracy > kept[-1].accuracy + 1e-12:
            kept.append(r)
    return kept


def _area(policy: Sequence[ItemRows], arms: Sequence[ItemRows], index: np.ndarray) -> float:
    arm_points = [r.point(index) for r in arms]
    policy_points = [r.point(index) for r in policy]
    low = max(min(p[0] for p in arm_points), min(p[0] for p in policy_points))
    high = max(p[0] for p in arm_points)
    return area_between(policy_points, arm_points, low, high) if high > low else 0.0


def _compare(label: str, baseline: ItemRows, method: ItemRows, ids: Sequence[str]) -> Comparison:
    def correct(rows: ItemRows) -> dict[str, bool]:
        return {i: bool(c) for i, c in zip(ids, rows.correct, strict=True)}

    name = f"{method.label}={method.knob:g}" if method.knob is not None else method.label
    return Comparison.of(label, (baseline.label, correct(baseline)), (name, correct(method)))


def curve_report(
    inputs: CurveInputs, plot_path: Path, resamples: int
) -> tuple[list[dict[str, Any]], list[Comparison], dict[str, Any], dict[str, Any]]:
    """Table rows, paired comparisons (each SelectLLM rule against the all-models vote, the
    policy's first point reaching the best arm against that arm), the summary (printed)
    and the details (the sweeps, the mixing frontier); writes the plot to ``plot_path``."""
    ids = sorted(inputs.test)
    items = [inputs.test[i] for i in ids]
    if not items:
        raise SystemExit("no test item has an outcome for every arm: nothing to report")
    questions = {r["item"]: r["question"] for r in inputs.test_records}
    router, cost = inputs.arm_router, inputs.cost
    probs = router.confidences([questions[i] for i in ids])
    table = router.latency if cost == "seconds" else router.tokens
    arms = [arm_rows(items, a.name, cost) for a in inputs.arms]
    threshold = sweep_policy(
        "threshold", items, probs, lambda p, k: choose_by_threshold(p, table, k), THRESHOLDS, cost
    )
    weighted = sweep_policy(
        "cost_weight",
        items,
        probs,
        lambda p, k: choose_by_cost_weight(p, table, k),
        COST_WEIGHTS,
        cost,
    )
    stages = _cascade_stages(inputs)
    margin = choose_cascade_margin(list(inputs.train.values()), stages, cost)
    cascades = [
        replace(cascade_rows(items, stages, margin, cost), label="cascade (margin from train)"),
        replace(cascade_rows(items, stages, 0.6, cost), label="cascade (fixed margin 0.6)"),
    ]
    selectllm = _selectllm_rows(inputs, ids)
    oracle = oracle_rows(items, cost)

    best = max(arms, key=lambda r: (r.accuracy, -r.mean_cost))
    reach = cost_to_reach(threshold, best.accuracy)
    reach_weighted = cost_to_reach(weighted, best.accuracy)
    everything = np.arange(len(ids))
    area = _area(threshold, arms, everything)
    interval = bootstrap_interval(
        list(everything),
        lambda sample: _area(threshold, arms, np.array(sample)),
        resamples=resamples,
    )
    rows = [_summary_row("arm", r) for r in arms]
    rows += [_summary_row("compute_aware", r) for r in _pareto(threshold)]
    rows += [_summary_row("selectllm", r) for r in selectllm]
    rows += [_summary_row("cascade", r) for r in cascades]
    rows.append(_summary_row("oracle", oracle))
    comparisons = [_compare("SelectLLM", selectllm[0], r, ids) for r in selectllm[1:]]
    if reach is not None:
        comparisons.append(_compare("compute-aware", best, reach, ids))
    summary: dict[str, Any] = {
        "cost": cost,
        "best_arm": {"arm": best.label, "accuracy": best.accuracy, "cost": best.mean_cost},
        "policy_reaches_best_arm": _reach(reach, best),
        "cost_weight_policy_reaches_best_arm": _reach(reach_weighted, best),
        "area_vs_random_mixing": {
            "mean_gain": area,
            "ci95": list(interval),
            "resamples": resamples,
        },
        "cascade_stages": stages,
        "cascade_margin_chosen_on_train": margin,
        "plot": str(plot_path),
    }
    details = {
        "mixing_frontier": mixing_frontier([r.point() for r in arms]),
        "sweeps": {
            name: [{"knob": r.knob, "cost": r.mean_cost, "accuracy": r.accuracy} for r in sweep]
            for name, sweep in (("threshold", threshold), ("cost_weight", weighted))
        },
    }
    plot(arms, threshold, weighted, selectllm + cascades + [oracle], cost, plot_path)
    return rows, comparisons, summary, details


def _reach(reach: ItemRows | None, best: ItemRows) -> dict[str, Any] | None:
    if reach is None:
        return None
    share = reach.mean_cost / best.mean_cost if best.mean_cost else float("nan")
    return {
        "knob": reach.knob,
        "cost": reach.mean_cost,
        "accuracy": reach.accuracy,
        "cost_share_of_best_arm": share,
        "goal_met": share <= GOAL_COST_SHARE,
    }


def plot(
    arms: Sequence[ItemRows],
    threshold: Sequence[ItemRows],
    weighted: Sequence[ItemRows],
    others: Sequence[ItemRows],
    cost: str,
    path: Path,
) -> None:
    fig, ax = plt.subplots(figsize=(8, 5))
    frontier = mixing_frontier([r.point() for r in arms])
    ax.plot(*zip(*frontier, strict=True), "--", color="grey", label="random mixing of arms")
    for r in arms:
        ax.scatter(r.mean_cost, r.accuracy, color="black", s=25)
        ax.annotate(r.label, (r.mean_cost, r.accuracy), fontsize=7, xytext=(4, -8),
                    textcoords="offset points")  # fmt: skip
    sweeps = (
        (threshold, "o-", "compute-aware, threshold swept"),
        (weighted, "s:", "compute-aware, cost weight swept"),
    )
    for sweep, style, label in sweeps:
        points = sorted({r.point() for r in sweep})
        ax.plot(*zip(*points, strict=True), style, markersize=3, label=label)
    for r in others:
        marker = "*" if r.label == "oracle" else "^"
        ax.scatter(r.mean_cost, r.accuracy, marker=marker, s=50, label=r.label)
    unit = "engine seconds" if cost == "seconds" else "generated tokens"
    ax.set_xlabel(f"mean cost per query ({unit})")
    ax.set_ylabel("accuracy")
    ax.set_title("Routing over (model, strategy) arms, held-out queries")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
