"""Evaluate routing policies offline on collected per-model samples (label records).

``system2 router collect`` runs every pool model ``samples`` times on each query and keeps
each model's votes (answer -> count), seconds and tokens. Collected on held-out queries,
those records answer "what would policy P have returned" for every policy at once, with
no resampling, so the policies compare on identical model outputs:

* a plan's answer is the vote over the pooled samples of its models (as the live
  ``self_consistency`` strategy votes over all planned models' samples), each model's
  votes weighted by the plan's weight for it (1 without weights); tied answers go to the
  majority answer of the best-placed model in the plan's order;
* ``cascade``: models cheapest (lowest mean latency) first; a model whose own vote margin
  reaches ``min_margin`` answers, else the next one is asked; the last always answers;
* ``random-k``: the exact expectation over every k-subset (no sampling luck);
* ``oracle``: right when any pool model's majority answer is right (SelectLLM's oracle).

Cost of a plan: ``latency_s`` is the slowest chosen model's seconds (models run side by
side, one worker each); ``compute_s`` and ``tokens`` add up every chosen model (what one
shared machine spends). A cascade runs its stages in turn: both add up its stages.

Correctness of a pooled answer is decided by ``judge(item_id, answer)`` (e.g. ``score_item``
on the data set's item): a pooled winner need not be any single model's majority answer.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from statistics import fmean
from typing import Any

from orchestrator.aggregation.voting import vote_margin
from policies.selectllm.rules import Selection

__all__ = [
    "ModelOutcome",
    "PolicyScore",
    "ReplayItem",
    "Selector",
    "cascade_outcome",
    "pooled_answer",
    "replay_items",
    "score_cascade",
    "score_oracle",
    "score_random_subsets",
    "score_selections",
    "selection_outcomes",
]

Judge = Callable[[str, str | None], bool]
Selector = Callable[["ReplayItem"], Selection]


@dataclass(frozen=True)
class ModelOutcome:
    """One model's collected samples for one query."""

    answer: str | None
    votes: Mapping[str, float]
    correct: bool
    seconds: float
    tokens: int

    @property
    def margin(self) -> float:
        return vote_margin(self.votes)


@dataclass(frozen=True)
class ReplayItem:
    id: str
    question: str
    outcomes: Mapping[str, ModelOutcome]


@dataclass(frozen=True)
class PolicyScore:
    """Means over items: accuracy, latency (side by side), compute seconds, tokens, and
    how many models a query used."""

    policy: str
    accuracy: float
    latency_s: float
    compute_s: float
    tokens: float
    models_per_query: float

    def row(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "accuracy": self.accuracy,
            "latency_s": self.latency_s,
            "compute_s": self.compute_s,
            "tokens": self.tokens,
            "models_per_query": self.models_per_query,
        }


def replay_items(records: Sequence[Mapping[str, Any]], pool: Sequence[str]) -> list[ReplayItem]:
    """Group label records (``policies.selectllm.labels``) by item; items missing a
    pool model or with a failed pair are refused with the pair named (replay needs every
    model)."""
    by_item: dict[str, dict[str, Mapping[str, Any]]] = {}
    questions: dict[str, str] = {}
    for r in records:
        by_item.setdefault(r["item"], {})[r["model"]] = r
        questions[r["item"]] = r["question"]
    items = []
    for item_id, per_model in by_item.items():
        outcomes = {}
        for model in pool:
            found = per_model.get(model)
            if found is None or found["status"] == "failed":
                why = "missing" if found is None else "failed"
                raise ValueError(f"cannot replay item {item_id!r}: model {model!r} is {why}")
            r = found
            outcomes[model] = ModelOutcome(
                answer=r["answer"],
                votes=dict(r["votes"]),
                correct=bool(r["label"]),
                seconds=float(r["seconds"]),
                tokens=int(r["completion_tokens"]),
            )
        items.append(ReplayItem(item_id, questions[item_id], outcomes))
    return items


def pooled_answer(
    item: ReplayItem, models: Sequence[str], weights: Mapping[str, float] | None = None
) -> str | None:
    """The winner of the pooled (weighted) vote of ``models``' samples; ties go to the
    majority answer of the earliest of ``models`` whose answer is tied, else the tied
    answer first seen."""
    totals: dict[str, float] = {}
    for m in models:
        w = 1.0 if weights is None else weights.get(m, 1.0)
        for answer, count in item.outcomes[m].votes.items():
            totals[answer] = totals.get(answer, 0.0) + w * count
    if not totals:
        return None
    best = max(totals.values())
    tied = [a for a, t in totals.items() if abs(t - best) <= 1e-9]
    for m in models:
        if item.outcomes[m].answer in tied:
            return item.outcomes[m].answer
    return tied[0]


def _cost(item: ReplayItem, models: Sequence[str], *, sequential: bool) -> tuple[float, float, int]:
    seconds = [item.outcomes[m].seconds for m in models]
    tokens = sum(item.outcomes[m].tokens for m in models)
    latency = sum(seconds) if sequential else max(seconds)
    return latency, sum(seconds), tokens


def _score(name: str, rows: Sequence[tuple[bool, float, float, int, int]]) -> PolicyScore:
    return PolicyScore(
        policy=name,
        accuracy=fmean(float(r[0]) for r in rows),
        latency_s=fmean(r[1] for r in rows),
        compute_s=fmean(r[2] for r in rows),
        tokens=fmean(r[3] for r in rows),
        models_per_query=fmean(r[4] for r in rows),
    )


def score_selections(
    name: str, items: Sequence[ReplayItem], select: Selector, judge: Judge
) -> PolicyScore:
    """A policy that picks models per item (``select``), answered by their pooled vote."""
    rows = []
    for item in items:
        selection = select(item)
        answer = pooled_answer(item, selection.models, selection.weights or None)
        latency, compute, tokens = _cost(item, selection.models, sequential=False)
        rows.append((judge(item.id, answer), latency, compute, tokens, len(selection.models)))
    return _score(name, rows)


def selection_outcomes(
    items: Sequence[ReplayItem], select: Selector, judge: Judge
) -> dict[str, tuple[bool, float, int]]:
    """Per item id: whether the selected models' pooled vote is right, and the compute
    seconds and tokens of the selected models (for paired comparisons and curves)."""
    outcomes = {}
    for item in items:
        selection = select(item)
        answer = pooled_answer(item, selection.models, selection.weights or None)
        _, compute, tokens = _cost(item, selection.models, sequential=False)
        outcomes[item.id] = (judge(item.id, answer), compute, tokens)
    return outcomes


def score_random_subsets(
    name: str, items: Sequence[ReplayItem], pool: Sequence[str], k: int, judge: Judge
) -> PolicyScore:
    """A uniformly random k-subset of the pool per query, as its exact expectation."""
    subsets = list(itertools.combinations(pool, k))
    rows = []
    for item in items:
        for subset in subsets:
            answer = pooled_answer(item, subset)
            latency, compute, tokens = _cost(item, subset, sequential=False)
            rows.append((judge(item.id, answer), latency, compute, tokens, k))
    return _score(name, rows)


def cascade_outcome(
    item: ReplayItem, order: Sequence[str], min_margin: float
) -> tuple[str | None, list[str]]:
    """The cascade's answer and the models it ran: the first model (in ``order``) whose
    vote margin reaches ``min_margin`` answers; the last answers regardless."""
    ran: list[str] = []
    for model in order:
        ran.append(model)
        if item.outcomes[model].margin >= min_margin:
            break
    return item.outcomes[ran[-1]].answer, ran


def score_cascade(
    name: str, items: Sequence[ReplayItem], order: Sequence[str], min_margin: float, judge: Judge
) -> PolicyScore:
    rows = []
    for item in items:
        answer, ran = cascade_outcome(item, order, min_margin)
        latency, compute, tokens = _cost(item, ran, sequential=True)
        rows.append((judge(item.id, answer), latency, compute, tokens, len(ran)))
    return _score(name, rows)


def score_oracle(name: str, items: Sequence[ReplayItem], pool: Sequence[str]) -> PolicyScore:
    """Right when any pool model's majority answer is right; costs the whole pool."""
    rows = []
    for item in items:
        latency, compute, tokens = _cost(item, pool, sequential=False)
        solved = any(item.outcomes[m].correct for m in pool)
        rows.append((solved, latency, compute, tokens, len(pool)))
    return _score(name, rows)
