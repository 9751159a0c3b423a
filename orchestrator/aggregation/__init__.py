"""Combining candidates' answers into one: majority, weighted and verifier-weighted votes
(``voting``, ``verifier_vote``), and the early-stop tests on a running vote. Pure functions
over answers and scores; picking one candidate by the model's log-probs (CodeRSA and its
baselines) is ``orchestrator.rerank``."""

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
    TieBreak,
    TieRule,
    VoteResult,
    break_tie,
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
    "TieBreak",
    "TieRule",
    "VoteResult",
    "break_tie",
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
