"""Pragmatic reranking (CodeRSA, Cao et al., arXiv 2502.15835) and its baselines, as pure
functions over log-probabilities, and ``RSAReranker``, the reranker that scores with them.
The model calls that fill the inputs live in ``orchestrator.rerank.model_calls`` (gathered
by ``orchestrator.rerank.evidence``); the baselines' rerankers in ``coder``,
``coder_reviewer`` and ``random_pick``.

Index conventions. Candidates are ``c_0 .. c_{n-1}`` (0-based). ``L0`` is an n x (n + 1)
matrix of summed token log-probs, one row per candidate, one column per instruction:

* ``L0[i][0] = log P(c_i | I_0)``, with ``I_0`` the original instruction;
* ``L0[i][k + 1] = log P(c_i | I(c_k))``, with ``I(c_k)`` the instruction (one-sentence
  description) induced from candidate ``c_k``.

So column ``j >= 1`` belongs to candidate ``j - 1``; in methods.md's 1-based numbering
(``c_1 .. c_n``, ``I_j`` induced from ``c_j``) the column index is the same and only the
row index shifts by one.

Rules we chose (the paper and methods.md leave them open):

- margins within ``TIE_TOLERANCE`` of each other are a tie (half a win each);
- z-scores use the population standard deviation; zero variance gives all zeros;
- the argmax takes the lowest index among scores within ``TIE_TOLERANCE`` of the best;
- non-finite log-probs are refused (ValueError): a NaN or -inf has no meaningful margin.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from orchestrator.rerank.base import Reranker, Reranking
from orchestrator.rerank.evidence import Evidence

__all__ = [
    "TIE_TOLERANCE",
    "RSAReranker",
    "RSAScores",
    "ScoredChoice",
    "best_index",
    "coder_reviewer_scores",
    "coder_scores",
    "global_support",
    "pairwise_win_rates",
    "random_choice",
    "rsa_scores",
    "zscores",
]

TIE_TOLERANCE = 1e-9
"""Two margins (or two final scores) this close are treated as equal."""


@dataclass(frozen=True)
class RSAScores:
    """Per-candidate pairwise win rate, global support, combined score, and the pick."""

    pairwise: tuple[float, ...]
    support: tuple[float, ...]
    score: tuple[float, ...]
    best: int


@dataclass(frozen=True)
class ScoredChoice:
    """A baseline's per-candidate score and the pick (the argmax, lowest index on ties)."""

    score: tuple[float, ...]
    best: int


def _check_finite(xs: Sequence[float], what: str) -> None:
    for i, x in enumerate(xs):
        if not math.isfinite(x):
            raise ValueError(f"{what}[{i}] is {x!r}; log-probs must be finite")


def _check_listener(L0: Sequence[Sequence[float]]) -> int:
    n = len(L0)
    if n == 0:
        raise ValueError("L0 has no rows (no candidates)")
    for i, row in enumerate(L0):
        if len(row) != n + 1:
            raise ValueError(f"L0 row {i} has {len(row)} columns; expected n + 1 = {n + 1}")
        _check_finite(row, f"L0[{i}]")
    return n


def best_index(scores: Sequence[float]) -> int:
    """The index of the largest score; among scores within ``TIE_TOLERANCE`` of it, the lowest.

    >>> best_index([0.0, 2.0, 2.0])
    1
    """
    if not scores:
        raise ValueError("no scores to choose from")
    top = max(scores)
    return next(i for i, s in enumerate(scores) if s >= top - TIE_TOLERANCE)


def pairwise_win_rates(L0: Sequence[Sequence[float]]) -> list[float]:
    """Each candidate's win rate in pragmatic contests against every other candidate.

    How we read methods.md: in the contest of ``c_a`` and ``c_b`` (a != b) each side's margin
    is how much better the original instruction explains it than the rival's induced
    instruction does: ``m_a = L0[a][0] - L0[a][b + 1]`` and ``m_b = L0[b][0] - L0[b][a + 1]``
    (methods.md: ``m_i = L0[i,0] - L0[i,j]``, column j being the instruction from ``c_j``).
    The larger margin wins 1, the smaller 0; margins within ``TIE_TOLERANCE`` give 0.5 each.
    ``pairwise(a) = wins / (n - 1)``. With one candidate there is no contest: ``[0.0]``.

    >>> pairwise_win_rates([[-5.0, -1.0, -9.0], [-4.0, -6.0, -2.0]])  # m_0 = 4 > m_1 = 2
    [1.0, 0.0]
    """
    n = _check_listener(L0)
    if n == 1:
        return [0.0]
    wins = [0.0] * n
    for a in range(n):
        for b in range(a + 1, n):
            m_a = L0[a][0] - L0[a][b + 1]
            m_b = L0[b][0] - L0[b][a + 1]
            if abs(m_a - m_b) <= TIE_TOLERANCE:
                wins[a] += 0.5
                wins[b] += 0.5
            elif m_a > m_b:
                wins[a] += 1.0
            else:
                wins[b] += 1.0
    return [w / (n - 1) for w in wins]


def global_support(L0: Sequence[Sequence[float]]) -> list[float]:
    """``avg(i) = mean_j L0[i][j]`` over all n + 1 columns, the original instruction
    (column 0) included, as methods.md's ``j = 0..n`` says.

    >>> global_support([[-1.0, -2.0, -3.0], [-4.0, -4.0, -4.0]])
    [-2.0, -4.0]
    """
    n = _check_listener(L0)
    return [math.fsum(row) / (n + 1) for row in L0]


def zscores(xs: Sequence[float]) -> list[float]:
    """``(x - mean) / std`` with the population standard deviation (divide by n).

    When every value is the same (zero variance, and so also for one value) the z-scores
    are all 0.0: the quantity says nothing about which candidate is better.

    >>> zscores([1.0, 3.0])
    [-1.0, 1.0]
    >>> zscores([2.0, 2.0, 2.0])
    [0.0, 0.0, 0.0]
    """
    if not xs:
        return []
    _check_finite(xs, "xs")
    mean = statistics.fmean(xs)
    std = statistics.pstdev(xs, mu=mean)
    if std == 0.0:
        return [0.0] * len(xs)
    return [(x - mean) / std for x in xs]


def rsa_scores(L0: Sequence[Sequence[float]]) -> RSAScores:
    """CodeRSA: ``score(i) = z(pairwise)_i + z(support)_i``; ``best`` is the argmax (lowest
    index on ties). One candidate is its own pick.

    >>> rsa_scores([[-2.0, -1.0, -9.0], [-4.0, -6.0, -2.0]])  # equal support; c_0 wins
    RSAScores(pairwise=(1.0, 0.0), support=(-4.0, -4.0), score=(1.0, -1.0), best=0)
    """
    pairwise = pairwise_win_rates(L0)
    support = global_support(L0)
    score = [p + s for p, s in zip(zscores(pairwise), zscores(support), strict=True)]
    return RSAScores(
        pairwise=tuple(pairwise),
        support=tuple(support),
        score=tuple(score),
        best=best_index(score),
    )


def coder_scores(logp_c_given_i0: Sequence[float]) -> ScoredChoice:
    """The Coder baseline: rank by ``log P(c_i | I_0)`` (column 0 of ``L0``).

    >>> coder_scores([-3.0, -1.0, -2.0]).best
    1
    """
    _check_finite(logp_c_given_i0, "logp_c_given_i0")
    return ScoredChoice(score=tuple(logp_c_given_i0), best=best_index(logp_c_given_i0))


def coder_reviewer_scores(
    logp_c_given_i0: Sequence[float], logp_i0_given_c: Sequence[float]
) -> ScoredChoice:
    """The Coder-Reviewer baseline: rank by ``log P(c_i | I_0) + log P(I_0 | c_i)``.

    >>> coder_reviewer_scores([-3.0, -1.0], [-1.0, -4.0]).best
    0
    """
    if len(logp_c_given_i0) != len(logp_i0_given_c):
        raise ValueError(
            f"{len(logp_c_given_i0)} coder scores but {len(logp_i0_given_c)} reviewer scores"
        )
    _check_finite(logp_c_given_i0, "logp_c_given_i0")
    _check_finite(logp_i0_given_c, "logp_i0_given_c")
    score = [c + r for c, r in zip(logp_c_given_i0, logp_i0_given_c, strict=True)]
    return ScoredChoice(score=tuple(score), best=best_index(score))


def random_choice(n: int, seed: int | None = None) -> int:
    """A uniformly random index in ``range(n)``; the same ``seed`` gives the same index,
    ``None`` draws fresh randomness.

    >>> random_choice(10, seed=7) == random_choice(10, seed=7)
    True
    """
    if n < 1:
        raise ValueError(f"n is {n}; need at least one candidate")
    return random.Random(seed).randrange(n)


@dataclass(frozen=True)
class RSAReranker(Reranker):
    """CodeRSA: n greedy descriptions, then the n x (n + 1) listener matrix (n + 1 score
    calls), scored by ``rsa_scores``."""

    kind: ClassVar[str] = "rsa"
    needs: ClassVar[tuple[str, ...]] = ("coder_column", "describe", "listener_rest")
    describe_max_tokens: int = 96

    def _gather_options(self) -> dict[str, Any]:
        return {"describe_max_tokens": self.describe_max_tokens}

    def decide(self, evidence: Evidence, n: int) -> Reranking:
        L0 = evidence.L0
        result = rsa_scores(L0)
        details = {
            "descriptions": evidence.descriptions,
            "L0": L0,
            "pairwise": list(result.pairwise),
            "support": list(result.support),
        }
        return Reranking(best=result.best, scores=result.score, details=details)
