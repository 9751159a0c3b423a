"""Counting vote ties in run records, new and old, and in the eval summary."""

from __future__ import annotations

from io import StringIO
from typing import Any

from rich.console import Console

from orchestrator.aggregation import break_tie, majority_vote, weighted_vote
from system2.evaluation import count_ties, print_summary, summarize
from system2.evaluation.vote_ties import UNRECORDED, is_tie


def _record(vote: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "id": "q",
        "correct": True,
        "status": "ok",
        "completion_tokens": 1,
        "seconds": 0.0,
        "trace": None if vote is None else {"vote": vote},
    }


def _new(vote_result: Any) -> dict[str, Any]:
    return _record(vote_result.to_record().model_dump(mode="json"))


def test_rules_counted_from_new_records() -> None:
    """Votes recorded with tie and tie_break are counted per rule; clear wins are not ties."""
    tied = majority_vote(["1", "2"])
    records = [
        _new(tied),
        _new(break_tie(tied, {"2": -0.1, "1": -1.0})),
        _new(weighted_vote(["a", "b"], [1.0, 1.0], tie_break=["b"])),
        _new(majority_vote(["1", "1", "2"])),
        _record(None),
    ]
    ties = count_ties(records)
    assert (ties.votes, ties.ties) == (4, 3)
    assert ties.by_rule == {"first": 1, "mean_logprob": 1, "plan_order": 1}
    assert ties.describe() == "3/4 (first 1, mean_logprob 1, plan_order 1)"


def test_old_records_judged_from_counts() -> None:
    """A vote from before ties were recorded is a tie when its top two counts are equal."""
    assert is_tie({"counts": {"5": 2.0, "6": 2.0, "7": 1.0}}) == (True, UNRECORDED)
    assert is_tie({"counts": {"5": 2.0, "6": 1.0}}) == (False, None)
    assert is_tie({"counts": {"5": 0.0, "6": 0.0}}) == (False, None)
    assert is_tie({"counts": {}}) == (False, None)


def test_eval_summary_counts_and_prints_ties() -> None:
    """summarize() carries the tie counts and print_summary shows them with the interval."""
    summary = summarize([_new(majority_vote(["1", "2"])), _new(majority_vote(["1"]))])
    assert (summary.ties.votes, summary.ties.ties) == (2, 1)
    buffer = StringIO()
    print_summary(summary, console=Console(file=buffer, width=120))
    text = buffer.getvalue()
    assert "1/2 (first 1)" in text
    assert "100.0% [34.2%, 100.0%]" in text
    assert count_ties([]).describe() == "-"
