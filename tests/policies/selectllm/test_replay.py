"""Offline policy replay on hand-made label records with known outcomes."""

from __future__ import annotations

from typing import Any

import pytest

from policies.selectllm.replay import (
    cascade_outcome,
    pooled_answer,
    replay_items,
    score_cascade,
    score_oracle,
    score_random_subsets,
    score_selections,
)
from policies.selectllm.rules import Selection

GOLD = {"q1": "4", "q2": "9"}


def judge(item_id: str, answer: str | None) -> bool:
    return answer == GOLD[item_id]


def _record(item: str, model: str, votes: dict[str, int], seconds: float) -> dict[str, Any]:
    answer = max(votes, key=lambda a: votes[a]) if votes else None
    return {
        "item": item, "model": model, "question": f"question {item}", "status": "ok",
        "answer": answer, "votes": votes, "label": int(answer == GOLD[item]),
        "seconds": seconds, "completion_tokens": int(10 * seconds),
    }  # fmt: skip


POOL = ("small", "large")
RECORDS = [
    # q1: small is split 3-2 on the wrong answer, large is sure of the right one.
    _record("q1", "small", {"5": 3, "4": 2}, 1.0),
    _record("q1", "large", {"4": 5}, 4.0),
    # q2: small is sure and right, large is wrong 3-2.
    _record("q2", "small", {"9": 5}, 1.0),
    _record("q2", "large", {"8": 3, "9": 2}, 4.0),
]
ITEMS = {i.id: i for i in replay_items(RECORDS, POOL)}


def test_pooled_vote_adds_samples_and_weights() -> None:
    """q1 pooled: 4 has 2 + 5 = 7 votes against 3; a heavy weight on small flips it."""
    assert pooled_answer(ITEMS["q1"], POOL) == "4"
    assert pooled_answer(ITEMS["q1"], POOL, {"small": 1.0, "large": 0.1}) == "5"


def test_pooled_tie_goes_to_the_first_models_answer() -> None:
    """q2 pooled is 9: 7 vs 8: 3; with weights making 9 and 8 tie, the earlier model wins."""
    weights = {"small": 0.6, "large": 1.0}  # 9: 0.6 * 5 + 2 = 5.0; 8: 3.0 -> no tie
    assert pooled_answer(ITEMS["q2"], POOL, weights) == "9"
    tie = {"small": 0.2, "large": 1.0}  # 9: 1 + 2 = 3; 8: 3 -> tied
    assert pooled_answer(ITEMS["q2"], ("large", "small"), tie) == "8"
    assert pooled_answer(ITEMS["q2"], ("small", "large"), tie) == "9"


def test_single_models_and_all_vote() -> None:
    """Each single model is right once; the pooled vote of both is right twice, and its
    latency is the slower model's while compute adds both."""
    for model in POOL:
        score = score_selections(
            model, list(ITEMS.values()), lambda i, m=model: Selection((m,)), judge
        )
        assert score.accuracy == 0.5
    both = score_selections("all", list(ITEMS.values()), lambda i: Selection(POOL), judge)
    assert both.accuracy == 1.0
    assert (both.latency_s, both.compute_s, both.models_per_query) == (4.0, 5.0, 2.0)


def test_random_subsets_are_the_exact_expectation() -> None:
    """k=1: each item is right under one of two models, so exactly 50%."""
    score = score_random_subsets("random-1", list(ITEMS.values()), POOL, 1, judge)
    assert score.accuracy == 0.5
    assert score.latency_s == pytest.approx(2.5)


def test_cascade_escalates_on_a_low_margin_only() -> None:
    """q1: small's margin 0.2 < 0.5 so large answers (right); q2: small is unanimous."""
    assert cascade_outcome(ITEMS["q1"], POOL, 0.5) == ("4", ["small", "large"])
    assert cascade_outcome(ITEMS["q2"], POOL, 0.5) == ("9", ["small"])
    score = score_cascade("cascade", list(ITEMS.values()), POOL, 0.5, judge)
    assert score.accuracy == 1.0
    assert score.latency_s == pytest.approx((5.0 + 1.0) / 2)  # stages add up


def test_oracle_counts_any_right_model() -> None:
    assert score_oracle("oracle", list(ITEMS.values()), POOL).accuracy == 1.0


def test_missing_or_failed_pairs_are_named() -> None:
    with pytest.raises(ValueError, match=r"'q1'.*'large' is missing"):
        replay_items(RECORDS[:1], POOL)
    failed = [*RECORDS[:1], {**RECORDS[1], "status": "failed"}]
    with pytest.raises(ValueError, match="'large' is failed"):
        replay_items(failed, POOL)
