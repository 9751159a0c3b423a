"""Combining candidates' answers into one: majority, weighted and verifier-weighted votes,
early-stop tests."""

from __future__ import annotations

from orchestrator.aggregation.verifier_vote import (
    PathAggregate,
    ScoreScale,
    path_score,
    score_paths,
    verifier_weighted_vote,
)
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
    "PathAggregate",
    "ScoreScale",
    "VoteResult",
    "cannot_be_overtaken",
    "decisive_reason",
    "is_decisive",
    "majority_vote",
    "margin_is_decisive",
    "path_score",
    "score_paths",
    "verifier_weighted_vote",
    "vote_margin",
    "weighted_vote",
]
