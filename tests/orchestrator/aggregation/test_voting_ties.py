"""Ties at the top of a vote: detected, their deciding rule named, re-picked by a score."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.aggregation import TieRule, break_tie, majority_vote, weighted_vote


def test_no_tie_records_no_rule() -> None:
    """A clear winner has no tied answers and no tie rule, in the result and the record."""
    vote = majority_vote(["1", "1", "2"])
    assert (vote.is_tie, vote.tied, vote.tie_rule) == (False, (), None)
    record = vote.to_record()
    assert (record.tie, record.tie_break) == (False, None)


def test_majority_tie_goes_to_first_and_says_so() -> None:
    """Today's rule: the first answer to appear wins the tie, and the record says 'first'."""
    vote = majority_vote(["9", "8", "8", "9", "7"])
    assert vote.winner == "9"
    assert vote.tied == ("9", "8")
    assert vote.tie_rule is TieRule.FIRST
    record = vote.to_record()
    assert (record.tie, record.tie_break) == (True, "first")


def test_weighted_tie_decided_by_plan_order() -> None:
    """With a tie_break order (the plan's models), the rule named is plan_order."""
    vote = weighted_vote(["a", "b"], [0.5, 0.5], tie_break=["b", "a"])
    assert vote.winner == "b"
    assert vote.tie_rule is TieRule.PLAN_ORDER


def test_no_votes_is_no_tie() -> None:
    """Only abstentions: no winner and no tie."""
    vote = majority_vote([None, None])
    assert (vote.winner, vote.is_tie) == (None, False)


def test_break_tie_picks_highest_score() -> None:
    """Among tied answers the highest score wins; answers outside the tie are ignored."""
    vote = majority_vote(["1", "2", "3", "3", "2", "1", "4"])
    picked = break_tie(vote, {"1": -1.0, "2": -0.3, "3": -0.6, "4": 0.0})
    assert picked.winner == "2"
    assert picked.tie_rule is TieRule.MEAN_LOGPROB
    assert picked.tied == ("2", "3", "1")
    assert picked.counts == vote.counts
    assert picked.to_record().tie_break == "mean_logprob"


def test_break_tie_equal_scores_fall_back_to_vote_order() -> None:
    """When the best scores tie too (e.g. every sample -inf), the vote's own rule decides."""
    vote = majority_vote(["1", "2", "3", "3", "2", "1"])
    same = break_tie(vote, {"1": -1.0, "2": -0.5, "3": -0.5})
    assert (same.winner, same.tie_rule) == ("2", TieRule.FIRST)
    unscored = break_tie(vote, {})
    assert (unscored.winner, unscored.tie_rule) == ("1", TieRule.FIRST)


def test_break_tie_without_tie_is_identity() -> None:
    """A vote that did not tie is returned unchanged, whatever the scores."""
    vote = majority_vote(["1", "1", "2"])
    assert break_tie(vote, {"2": 0.0, "1": -5.0}) is vote


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_break_tie_rejects_nan_and_inf(bad: float) -> None:
    """NaN and +inf scores are refused, naming the answer."""
    with pytest.raises(ValueError, match="'7'"):
        break_tie(majority_vote(["7", "8"]), {"7": bad})


@settings(deadline=None)  # a shared, busy CPU: timings say nothing
@given(st.lists(st.sampled_from("abcd") | st.none(), min_size=1, max_size=12))
def test_tie_flag_matches_counts(answers: list[str | None]) -> None:
    """is_tie holds exactly when two answers share the top count; the winner is among them."""
    vote = majority_vote(answers)
    counts = sorted(vote.counts.values(), reverse=True)
    assert vote.is_tie == (len(counts) > 1 and counts[0] == counts[1])
    if vote.is_tie:
        assert vote.winner == vote.tied[0]
        assert {vote.counts[a] for a in vote.tied} == {counts[0]}
