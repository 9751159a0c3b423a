"""Voting and early-stop rules: table-driven cases plus property-based checks."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.aggregation import (
    Decisive,
    VoteResult,
    cannot_be_overtaken,
    decisive_reason,
    is_decisive,
    majority_vote,
    margin_is_decisive,
    vote_margin,
    weighted_vote,
)
from orchestrator.types import VoteRecord

# --- majority_vote -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answers", "winner", "counts", "margin"),
    [
        (["42", "42", "42"], "42", {"42": 3.0}, 1.0),
        (["42", "41", "42"], "42", {"42": 2.0, "41": 1.0}, 1 / 3),
        (["1", "2", "3", "2"], "2", {"1": 1.0, "2": 2.0, "3": 1.0}, 1 / 4),
        (["a", "b"], "a", {"a": 1.0, "b": 1.0}, 0.0),
        (["b", "a", "a", "b"], "b", {"b": 2.0, "a": 2.0}, 0.0),
        (["x", None, None], "x", {"x": 1.0}, 1.0),
        ([None, "y", "x", "y"], "y", {"y": 2.0, "x": 1.0}, 1 / 3),
    ],
)
def test_majority_vote_cases(
    answers: list[str | None], winner: str, counts: dict[str, float], margin: float
) -> None:
    """majority_vote counts non-None answers, picks the most frequent and computes the margin."""
    vote = majority_vote(answers)
    assert vote.winner == winner
    assert vote.counts == counts
    assert list(vote.counts) == list(counts)  # first-appearance order
    assert vote.total == sum(counts.values())
    assert vote.margin == pytest.approx(margin)
    assert vote.method == "majority"


@pytest.mark.parametrize("answers", [[], [None], [None, None, None]])
def test_majority_vote_without_votes(answers: list[str | None]) -> None:
    """With no non-None answer there is no winner, no total and a zero margin."""
    assert majority_vote(answers) == VoteResult(
        winner=None, counts={}, total=0.0, margin=0.0, method="majority"
    )


def test_majority_vote_tie_break_order_wins_ties() -> None:
    """A tie goes to the tied answer listed first in tie_break, not to the first seen."""
    assert majority_vote(["a", "b", "c"], tie_break=["c", "b"]).winner == "c"
    assert majority_vote(["a", "b", "b", "a"], tie_break=["b"]).winner == "b"


def test_majority_vote_tie_break_does_not_override_counts() -> None:
    """tie_break only decides ties; a strictly larger count still wins."""
    assert majority_vote(["a", "a", "b"], tie_break=["b"]).winner == "a"


def test_majority_vote_tie_break_falls_back_to_first_appearance() -> None:
    """Tied answers absent from tie_break are ordered by first appearance."""
    assert majority_vote(["a", "b"], tie_break=["zzz"]).winner == "a"


def test_to_record_carries_vote() -> None:
    """to_record copies the vote into the trace's VoteRecord, with the early-stop flag."""
    vote = majority_vote(["5", "5", "6"])
    record = vote.to_record(stopped_early=True)
    assert record == VoteRecord(
        method="majority",
        counts={"5": 2.0, "6": 1.0},
        winner="5",
        margin=vote.margin,
        stopped_early=True,
    )
    assert record.margin == pytest.approx(1 / 3)
    assert record.counts is not vote.counts
    assert vote.to_record().stopped_early is False


# --- weighted_vote -----------------------------------------------------------------------


def test_weighted_vote_weights_beat_frequency() -> None:
    """One heavy vote outweighs two light ones."""
    vote = weighted_vote(["a", "b", "b"], [0.9, 0.2, 0.3])
    assert vote.winner == "a"
    assert vote.counts == pytest.approx({"a": 0.9, "b": 0.5})
    assert vote.total == pytest.approx(1.4)
    assert vote.margin == pytest.approx(0.4 / 1.4)
    assert vote.method == "weighted"


def test_weighted_vote_none_answers_carry_no_weight() -> None:
    """A None answer's weight is dropped, not given to anyone."""
    vote = weighted_vote([None, "a", "b"], [10.0, 1.0, 2.0])
    assert vote.winner == "b"
    assert vote.total == pytest.approx(3.0)


def test_weighted_vote_all_zero_weights_has_no_winner() -> None:
    """When every weight is zero no answer wins and the margin is 0."""
    vote = weighted_vote(["a", "b"], [0.0, 0.0])
    assert vote.winner is None
    assert vote.margin == 0.0
    assert vote.counts == {"a": 0.0, "b": 0.0}


@pytest.mark.parametrize(
    ("answers", "weights", "message"),
    [
        (["a", "b"], [1.0], "2 answers but 1 weights"),
        (["a"], [-0.5], "weight 0 is -0.5"),
        (["a", "b"], [1.0, math.nan], "weight 1 is nan"),
        (["a"], [math.inf], "weight 0 is inf"),
        (["a", "a"], [1e308, 1e308], "overflows"),
    ],
)
def test_weighted_vote_rejects_bad_weights(
    answers: list[str | None], weights: list[float], message: str
) -> None:
    """Mismatched lengths and negative, NaN, infinite or overflowing weights raise ValueError."""
    with pytest.raises(ValueError, match=message):
        weighted_vote(answers, weights)


# --- early stopping ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("counts", "remaining", "expected"),
    [
        ({"a": 3.0, "b": 1.0}, 1, True),  # 3 vs at most 2
        ({"a": 3.0, "b": 1.0}, 2, False),  # 3 vs 3 is a possible tie
        ({"a": 3.0}, 2, True),  # a new answer gets at most 2
        ({"a": 2.0}, 2, False),
        ({"a": 1.0, "b": 1.0}, 0, False),  # a tie is never settled
        ({"a": 2.0, "b": 1.0}, 0, True),  # nothing left: the leader has won
        ({}, 0, False),
        ({"a": 0.9, "b": 0.2}, 0.5, True),  # weighted
    ],
)
def test_cannot_be_overtaken_cases(
    counts: dict[str, float], remaining: float, expected: bool
) -> None:
    """cannot_be_overtaken is True exactly when leader - runner-up > remaining."""
    assert cannot_be_overtaken(counts, remaining) is expected


@pytest.mark.parametrize(
    ("counts", "min_margin", "min_votes", "expected"),
    [
        ({"a": 4.0, "b": 1.0}, 0.6, 0, True),  # margin 0.6
        ({"a": 3.0, "b": 1.0}, 0.6, 0, False),  # margin 0.5
        ({"a": 1.0}, 1.0, 0, True),  # one vote is unanimous
        ({"a": 1.0}, 1.0, 3, False),  # ... unless a minimum number of votes is required
        ({"a": 3.0}, 1.0, 3, True),
        ({}, 0.1, 0, False),
    ],
)
def test_margin_is_decisive_cases(
    counts: dict[str, float], min_margin: float, min_votes: float, expected: bool
) -> None:
    """margin_is_decisive compares (top - runner-up) / total with min_margin, after min_votes."""
    assert margin_is_decisive(counts, min_margin=min_margin, min_votes=min_votes) is expected


def test_decisive_reason_names_the_rule() -> None:
    """decisive_reason says which rule fired, trying the exact rule first."""
    assert decisive_reason({"a": 3.0, "b": 1.0}, 1, min_margin=0.9) is Decisive.CANNOT_BE_OVERTAKEN
    assert decisive_reason({"a": 5.0}, 100, min_margin=0.9) is Decisive.MARGIN
    assert decisive_reason({"a": 2.0, "b": 1.0}, 10, min_margin=0.9) is None
    assert str(Decisive.MARGIN) == "margin"


def test_is_decisive_matches_either_rule() -> None:
    """is_decisive is True when either rule fires and False when neither does."""
    assert is_decisive({"a": 3.0, "b": 1.0}, 1, min_margin=0.9)
    assert is_decisive({"a": 5.0}, 100, min_margin=0.9)
    assert not is_decisive({"a": 5.0}, 100, min_margin=0.9, min_votes=6)
    assert not is_decisive({"a": 2.0, "b": 1.0}, 10, min_margin=0.9)


@pytest.mark.parametrize(
    ("counts", "remaining", "min_margin", "message"),
    [
        ({"a": 1.0}, -1, 0.5, "remaining is -1"),
        ({"a": 1.0}, math.nan, 0.5, "remaining is nan"),
        ({"a": -1.0}, 1, 0.5, "count for 'a' is -1.0"),
        ({"a": 1.0}, 1, 0.0, r"min_margin is 0.0; it must be in \(0, 1\]"),
        ({"a": 1.0}, 1, 1.5, "min_margin is 1.5"),
        ({"a": 1.0}, 1, math.nan, "min_margin is nan"),
    ],
)
def test_early_stop_rejects_bad_arguments(
    counts: dict[str, float], remaining: float, min_margin: float, message: str
) -> None:
    """Negative or NaN remaining/counts and min_margin outside (0, 1] raise ValueError."""
    with pytest.raises(ValueError, match=message):
        is_decisive(counts, remaining, min_margin=min_margin)


# --- properties --------------------------------------------------------------------------

_ANSWERS = st.lists(st.one_of(st.none(), st.sampled_from(["1", "2", "3", "4", "x"])), max_size=30)


@given(answers=_ANSWERS)
def test_winner_has_max_count(answers: list[str | None]) -> None:
    """The majority winner's count is the maximum, and it is the first such answer seen."""
    vote = majority_vote(answers)
    if vote.winner is None:
        assert all(a is None for a in answers)
        return
    top = max(vote.counts.values())
    assert vote.counts[vote.winner] == top
    first_at_top = next(a for a in answers if a is not None and vote.counts[a] == top)
    assert vote.winner == first_at_top


@given(answers=_ANSWERS)
def test_counts_and_margin_are_consistent(answers: list[str | None]) -> None:
    """Counts match the non-None answers, total is their sum and margin lies in [0, 1]."""
    vote = majority_vote(answers)
    assert vote.total == sum(a is not None for a in answers)
    for answer, count in vote.counts.items():
        assert count == answers.count(answer)
    assert 0.0 <= vote.margin <= 1.0
    assert vote.margin == vote_margin(vote.counts)
    if len(vote.counts) == 1:
        assert vote.margin == 1.0


@given(answers=_ANSWERS, data=st.data())
def test_counts_are_permutation_invariant(answers: list[str | None], data: st.DataObject) -> None:
    """Shuffling the answers leaves counts, total and margin unchanged."""
    shuffled = data.draw(st.permutations(answers))
    a, b = majority_vote(answers), majority_vote(shuffled)
    assert a.counts == b.counts
    assert a.total == b.total
    assert a.margin == b.margin


@given(answers=_ANSWERS, weight=st.floats(min_value=0.01, max_value=100.0))
def test_equal_weights_equal_majority(answers: list[str | None], weight: float) -> None:
    """A weighted vote with equal positive weights picks the majority winner and margin."""
    majority = majority_vote(answers)
    weighted = weighted_vote(answers, [weight] * len(answers))
    assert weighted.winner == majority.winner
    assert weighted.margin == pytest.approx(majority.margin)
    assert weighted.counts == pytest.approx({a: c * weight for a, c in majority.counts.items()})


@given(
    answers=_ANSWERS,
    weights=st.lists(st.floats(min_value=0.0, max_value=1e6), min_size=30, max_size=30),
)
def test_weighted_margin_in_unit_interval(answers: list[str | None], weights: list[float]) -> None:
    """Any valid weights give a margin in [0, 1] and a winner of maximal weight."""
    vote = weighted_vote(answers, weights[: len(answers)])
    assert 0.0 <= vote.margin <= 1.0
    if vote.winner is not None:
        assert vote.counts[vote.winner] == max(vote.counts.values())


@given(answers=_ANSWERS, more=_ANSWERS)
def test_cannot_be_overtaken_is_exact(answers: list[str | None], more: list[str | None]) -> None:
    """When cannot_be_overtaken holds, no further votes (as many as remaining) change the winner."""
    vote = majority_vote(answers)
    if cannot_be_overtaken(vote.counts, len(more)):
        assert majority_vote([*answers, *more]).winner == vote.winner
