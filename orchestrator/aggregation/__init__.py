"""Combining candidates' answers into one: majority and weighted votes, early-stop tests."""

from __future__ import annotations

from orchestrator.aggregation.voting import (
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

__all__ = [
    "Decisive",
    "VoteResult",
    "cannot_be_overtaken",
    "decisive_reason",
    "is_decisive",
    "majority_vote",
    "margin_is_decisive",
    "vote_margin",
    "weighted_vote",
]
