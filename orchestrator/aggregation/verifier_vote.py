"""Verifier-weighted self-consistency: each path votes with a weight from its step scores.

Rules (ours; the sources leave them open):

- A path's score aggregates its step scores: ``"min"`` (a chain is as good as its weakest
  step, the usual PRM reading; the default), ``"mean"``, ``"last"`` or ``"product"``.
- ``scale="probability"`` (PRM scores, P(step correct) in [0, 1]): weight = the path score.
  ``scale="logit"`` (token-verifier scores, Bradley-Terry logits): weight =
  exp(path score - the best path's score), a path's Bradley-Terry strength relative to the
  best; ``"product"`` is refused there (a product of logits means nothing).
- A path with no steps, or no answer, abstains.
- ``prior`` weights (e.g. a router's per-model vote weights) multiply the path weights.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from orchestrator.aggregation.voting import VoteResult, weighted_vote
from workers.base import Prompt

if TYPE_CHECKING:
    from workers.base import StepVerifier

__all__ = ["PathAggregate", "ScoreScale", "path_score", "score_paths", "verifier_weighted_vote"]

PathAggregate = Literal["min", "mean", "last", "product"]
ScoreScale = Literal["probability", "logit"]


def path_score(step_scores: Sequence[float], how: PathAggregate = "min") -> float | None:
    """One path's score from its step scores; None for a path without steps.

    >>> path_score([0.9, 0.4, 0.8]), path_score([0.9, 0.4, 0.8], "last")
    (0.4, 0.8)
    """
    if not step_scores:
        return None
    if how == "min":
        return min(step_scores)
    if how == "mean":
        return math.fsum(step_scores) / len(step_scores)
    if how == "last":
        return step_scores[-1]
    if how == "product":
        return math.prod(step_scores)
    raise ValueError(f"unknown aggregate {how!r}")


def verifier_weighted_vote(
    answers: Sequence[str | None],
    step_scores: Sequence[Sequence[float]],
    *,
    aggregate: PathAggregate = "min",
    scale: ScoreScale = "probability",
    tie_break: Sequence[str] | None = None,
    prior: Sequence[float] | None = None,
) -> VoteResult:
    """The answer with the largest summed path weight (see the module doc for the rules).

    >>> verifier_weighted_vote(["7", "8", "8"], [[0.9, 0.9], [0.2, 0.9], [0.3]]).winner
    '7'
    >>> verifier_weighted_vote(["7", "8", "8"], [[2.0], [1.5], [1.5]], scale="logit").winner
    '8'
    """
    if len(answers) != len(step_scores):
        raise ValueError(f"{len(answers)} answers but {len(step_scores)} step-score lists")
    if scale == "logit" and aggregate == "product":
        raise ValueError("aggregate 'product' needs probabilities, not logits")
    scores = [path_score(s, aggregate) for s in step_scores]
    if scale == "probability":
        for i, score in enumerate(scores):
            if score is not None and not 0.0 <= score <= 1.0:
                raise ValueError(f"path {i} scores {score!r}; probabilities lie in [0, 1]")
        weights = [0.0 if s is None else s for s in scores]
    else:
        voting = zip(scores, answers, strict=True)
        best = max((s for s, a in voting if s is not None and a is not None), default=0.0)
        weights = [0.0 if s is None else math.exp(s - best) for s in scores]
    if prior is not None:
        if len(prior) != len(weights):
            raise ValueError(f"{len(answers)} answers but {len(prior)} prior weights")
        weights = [w * p for w, p in zip(weights, prior, strict=True)]
    result = weighted_vote(answers, weights, tie_break=tie_break)
    return dataclasses.replace(result, method=f"verifier_{aggregate}")


async def score_paths(
    verifier: StepVerifier, prompt: Prompt, paths: Sequence[Sequence[str]]
) -> list[list[float]]:
    """Every path's step scores (one ``score_steps`` call per path, run concurrently)."""
    return list(await asyncio.gather(*(verifier.score_steps(prompt, p) for p in paths)))
