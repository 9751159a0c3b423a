"""Verifier-weighted voting on hand-made step scores."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest

from orchestrator.aggregation import path_score, score_paths, verifier_weighted_vote
from workers.base import Prompt


def test_path_score_aggregates() -> None:
    steps = [0.9, 0.5, 0.8]
    assert path_score(steps, "min") == 0.5
    assert path_score(steps, "mean") == pytest.approx(2.2 / 3)
    assert path_score(steps, "last") == 0.8
    assert path_score(steps, "product") == pytest.approx(0.36)
    assert path_score([], "min") is None


def test_probability_weights_sum_per_answer() -> None:
    """'8' has two weak paths (0.3 + 0.2 by their weakest steps), '7' one strong (0.9)."""
    vote = verifier_weighted_vote(
        ["7", "8", "8", None], [[0.95, 0.9], [0.9, 0.3], [0.2], [1.0]], aggregate="min"
    )
    assert vote.winner == "7"
    assert vote.counts == pytest.approx({"7": 0.9, "8": 0.5})
    assert vote.method == "verifier_min"
    by_mean = verifier_weighted_vote(
        ["7", "8", "8"], [[0.95, 0.25], [0.9, 0.3], [0.6]], aggregate="mean"
    )
    assert by_mean.winner == "8"


def test_logit_weights_are_relative_bradley_terry_strengths() -> None:
    vote = verifier_weighted_vote(
        ["a", "b", "b"], [[3.0], [1.0, 2.0], [2.0]], scale="logit", aggregate="mean"
    )
    assert vote.counts["a"] == pytest.approx(1.0)
    assert vote.counts["b"] == pytest.approx(math.exp(-1.5) + math.exp(-1.0))
    assert vote.winner == "a"
    # shifting every score leaves the vote unchanged; an empty path abstains
    shifted = verifier_weighted_vote(
        ["a", "b", "b", "c"], [[103.0], [101.5], [102.0], []], scale="logit"
    )
    assert shifted.counts == pytest.approx(
        {"a": 1.0, "b": math.exp(-1.5) + math.exp(-1.0), "c": 0.0}
    )


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="probabilities"):
        verifier_weighted_vote(["a"], [[1.5]])
    with pytest.raises(ValueError, match="product"):
        verifier_weighted_vote(["a"], [[0.5]], aggregate="product", scale="logit")
    with pytest.raises(ValueError, match="2 answers"):
        verifier_weighted_vote(["a", "b"], [[0.5]])


async def test_score_paths_asks_the_verifier_per_path() -> None:
    class Lengths:
        async def score_steps(self, prompt: Prompt, steps: Sequence[str]) -> list[float]:
            return [len(s) / 10 for s in steps]

    scores = await score_paths(Lengths(), "q", [["ab", "abcd"], ["a"]])
    assert scores == [[0.2, 0.4], [0.1]]
