"""CodeRSA scoring and its baselines on hand-made log-prob matrices (no model)."""

from __future__ import annotations

import doctest
import math

import pytest
import structlog

from orchestrator.rerank import codersa as rsa
from orchestrator.rerank.codersa import (
    best_index,
    coder_reviewer_scores,
    coder_scores,
    global_support,
    pairwise_win_rates,
    random_choice,
    rsa_scores,
    zscores,
)

# Rows c_0..c_2; columns I_0, I(c_0), I(c_1), I(c_2).
HAND = [
    [-6.0, -2.0, -16.0, -16.0],
    [-4.0, -8.0, -2.0, -18.0],
    [-8.0, -12.0, -26.0, -2.0],
]
ROOT_3_2 = math.sqrt(1.5)


def test_hand_computed_win_rates() -> None:
    """The 3x4 example's contests give c_0 two wins, c_1 none and c_2 one."""
    # c_0 vs c_1: m_0 = -6 - (-16) = 10 > m_1 = -4 - (-8) = 4      -> c_0
    # c_0 vs c_2: m_0 = -6 - (-16) = 10 > m_2 = -8 - (-12) = 4     -> c_0
    # c_1 vs c_2: m_1 = -4 - (-18) = 14 < m_2 = -8 - (-26) = 18    -> c_2
    assert pairwise_win_rates(HAND) == [1.0, 0.0, 0.5]


def test_hand_computed_support() -> None:
    """Global support is the mean of a row over all four columns, I_0 included."""
    assert global_support(HAND) == [-40 / 4, -32 / 4, -48 / 4]


def test_hand_computed_scores_and_pick() -> None:
    """z(pairwise) + z(support) matches the hand computation and picks c_0."""
    # pairwise [1, 0, 0.5]: mean 0.5, population sd sqrt(1/6) -> z = [+-sqrt(3/2), 0]
    # support [-10, -8, -12]: mean -10, population sd sqrt(8/3) -> z = [0, +-sqrt(3/2)]
    result = rsa_scores(HAND)
    assert result.pairwise == (1.0, 0.0, 0.5)
    assert result.support == (-10.0, -8.0, -12.0)
    assert zscores(result.pairwise) == pytest.approx([ROOT_3_2, -ROOT_3_2, 0.0])
    assert zscores(result.support) == pytest.approx([0.0, ROOT_3_2, -ROOT_3_2])
    assert result.score == pytest.approx((ROOT_3_2, 0.0, -ROOT_3_2))
    assert result.best == 0


def test_equal_margins_split_the_contest() -> None:
    """Equal margins, exactly or within 1e-9, give each side half a win."""
    exact = [[-5.0, -1.0, -7.0], [-3.0, -5.0, -1.0]]  # m_0 = 2, m_1 = 2
    near = [[-5.0, -1.0, -7.0], [-3.0, -5.0 - 1e-12, -1.0]]  # m_1 = 2 + 1e-12
    assert pairwise_win_rates(exact) == [0.5, 0.5]
    assert pairwise_win_rates(near) == [0.5, 0.5]


def test_zero_variance_zscores_are_zero() -> None:
    """Identical values (and a single value) have all-zero z-scores, not a division error."""
    assert zscores([0.5, 0.5, 0.5]) == [0.0, 0.0, 0.0]
    assert zscores([-3.0]) == [0.0]
    assert zscores([]) == []


def test_one_candidate_is_the_pick() -> None:
    """With n = 1 there is no contest and the only candidate is chosen."""
    result = rsa_scores([[-3.0, -1.0]])
    assert result.best == 0
    assert result.pairwise == (0.0,)
    assert result.support == (-2.0,)
    assert result.score == (0.0,)


def test_tied_scores_go_to_the_lowest_index() -> None:
    """Two identical best candidates: the argmax is the first of them."""
    # c_1 and c_2 are duplicates (same row, same description column), better than c_0.
    L0 = [
        [-9.0, -2.0, -3.0, -3.0],
        [-3.0, -9.0, -2.0, -2.0],
        [-3.0, -9.0, -2.0, -2.0],
    ]
    result = rsa_scores(L0)
    assert result.pairwise == (0.0, 0.75, 0.75)
    assert result.score[1] == result.score[2]
    assert result.best == 1
    assert best_index([1.0, 3.0, 3.0 - 1e-12]) == 1
    assert rsa_scores([[-1.0, -1.0, -1.0], [-1.0, -1.0, -1.0]]).best == 0


def test_malformed_matrices_are_refused() -> None:
    """A ragged, empty or non-finite matrix raises ValueError naming the problem."""
    with pytest.raises(ValueError, match="expected n \\+ 1 = 3"):
        rsa_scores([[-1.0, -2.0], [-1.0, -2.0, -3.0]])
    with pytest.raises(ValueError, match="no rows"):
        rsa_scores([])
    with pytest.raises(ValueError, match="finite"):
        rsa_scores([[-1.0, math.nan]])


def test_coder_baseline_takes_the_most_likely_candidate() -> None:
    """Coder ranks by log P(c | I_0) alone."""
    choice = coder_scores([-3.0, -1.0, -2.0])
    assert choice.score == (-3.0, -1.0, -2.0)
    assert choice.best == 1


def test_coder_reviewer_baseline_sums_both_directions() -> None:
    """Coder-Reviewer ranks by log P(c | I_0) + log P(I_0 | c)."""
    choice = coder_reviewer_scores([-3.0, -1.0, -2.0], [-1.0, -4.0, -1.0])
    assert choice.score == (-4.0, -5.0, -3.0)
    assert choice.best == 2
    with pytest.raises(ValueError, match="reviewer"):
        coder_reviewer_scores([-1.0], [-1.0, -2.0])


def test_random_choice_is_seeded_and_in_range() -> None:
    """The random baseline repeats under a seed, stays in range and refuses n = 0."""
    picks = [random_choice(10, seed=s) for s in range(50)]
    assert picks == [random_choice(10, seed=s) for s in range(50)]
    assert set(picks) <= set(range(10))
    assert len(set(picks)) > 1
    with pytest.raises(ValueError, match="at least one"):
        random_choice(0, seed=1)


def test_docstring_examples() -> None:
    """The examples in rsa's docstrings run and print what they show."""
    with structlog.testing.capture_logs():
        result = doctest.testmod(rsa)
    assert result.failed == 0
    assert result.attempted > 0
