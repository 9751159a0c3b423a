"""Batched, cached candidate scoring against one-candidate-at-a-time forward passes."""

from __future__ import annotations

import pytest
import torch

from tests.workers.verifier.helpers import naive_score, random_verifier
from workers.verifier import TokenVerifier, VerifierCache, candidate_attention_mask
from workers.verifier import score_candidates as score

PREFIXES = [[3, 4, 5], [6, 7, 8, 9, 10, 11, 12, 13], [14], [15, 16, 17, 18]]
CANDIDATES = [[2, 3, 4], [5], [6, 7, 8, 9, 10], []]


def _assert_matches_naive(
    verifier: TokenVerifier,
    prefixes: list[list[int]],
    candidates: list[list[int]],
    scores: torch.Tensor,
) -> None:
    assert scores.shape == (len(prefixes), max(len(c) for c in candidates))
    for row, (prefix, cands) in enumerate(zip(prefixes, candidates, strict=True)):
        for slot, candidate in enumerate(cands):
            expected = naive_score(verifier, prefix, candidate)
            assert float(scores[row, slot]) == pytest.approx(expected, abs=1e-5)
        assert scores[row, len(cands) :].eq(0).all()  # padding


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_batched_scores_equal_naive_scores(attn: str) -> None:
    """Rows of different prefix lengths and candidate counts, one pass, match naive scoring."""
    verifier = random_verifier(attn_implementation=attn)
    scores = score(verifier, PREFIXES, CANDIDATES)
    _assert_matches_naive(verifier, PREFIXES, CANDIDATES, scores)


def test_single_prefix_mask_matches_naive() -> None:
    """``candidate_attention_mask`` on one uncached forward gives the naive scores."""
    verifier = random_verifier()
    prefix, cands = [3, 9, 4, 12], [5, 6, 7]
    with torch.no_grad():
        scores = verifier(
            torch.tensor([prefix + cands]),
            attention_mask=candidate_attention_mask(len(prefix), len(cands)),
            position_ids=torch.tensor([[0, 1, 2, 3, 4, 4, 4]]),
        )
    for slot, candidate in enumerate(cands):
        expected = naive_score(verifier, prefix, candidate)
        assert float(scores[0, len(prefix) + slot]) == pytest.approx(expected, abs=1e-5)


def test_cache_reuse_across_steps_equals_scratch() -> None:
    """Steps on one cache (one or several new tokens per row) equal scoring from scratch."""
    verifier = random_verifier(1)
    cache = VerifierCache()
    prefixes = [list(p) for p in PREFIXES]
    steps = [[[20], [21], [22, 23, 24], []], [[25], [26], [27], [28]], [[29], [], [30], [31]]]
    score(verifier, prefixes, CANDIDATES, cache)
    for new_tokens in steps:
        prefixes = [p + n for p, n in zip(prefixes, new_tokens, strict=True)]
        cached = score(verifier, prefixes, CANDIDATES, cache)
        assert torch.allclose(cached, score(verifier, prefixes, CANDIDATES), atol=1e-5)
        _assert_matches_naive(verifier, prefixes, CANDIDATES, cached)


def test_candidate_positions_stay_out_of_the_cache() -> None:
    """After a step the cache holds exactly each row's prefix, never its candidates."""
    verifier = random_verifier()
    cache = VerifierCache()
    score(verifier, PREFIXES, CANDIDATES, cache)
    assert cache.cache is not None
    assert cache.valid is not None
    assert cache.cache.get_seq_length() == max(map(len, PREFIXES)) == cache.valid.shape[1]
    assert cache.valid.sum(-1).tolist() == [len(p) for p in PREFIXES]
    assert cache.tokens == [tuple(p) for p in PREFIXES]
    prefixes = [[*p, 2] for p in PREFIXES]
    score(verifier, prefixes, CANDIDATES, cache)
    assert cache.cache.get_seq_length() == max(map(len, PREFIXES)) + 1


def test_realign_drops_reorders_and_adds_rows() -> None:
    """Rows matched by content keep their cache; new rows start empty; scores stay exact."""
    verifier = random_verifier(2)
    cache = VerifierCache()
    score(verifier, PREFIXES, CANDIDATES, cache)
    # Row 1 finished, rows 3 and 0 swapped order and grew by one token, a new row joined.
    sequences = [[*PREFIXES[3], 9], [30, 31], [*PREFIXES[0], 7], [*PREFIXES[2], 8]]
    candidates = [[2, 3], [4], [], [5, 6, 7]]
    cache.realign(sequences)
    assert cache.tokens == [tuple(PREFIXES[3]), (), tuple(PREFIXES[0]), tuple(PREFIXES[2])]
    scores = score(verifier, sequences, candidates, cache)
    _assert_matches_naive(verifier, sequences, candidates, scores)


def test_cache_must_hold_a_prefix_of_each_row() -> None:
    """A mismatched cache row or row count is refused, not silently mis-scored."""
    verifier = random_verifier()
    cache = VerifierCache()
    score(verifier, [[3, 4]], [[5]], cache)
    with pytest.raises(ValueError, match="prefix"):
        score(verifier, [[3, 5, 6]], [[5]], cache)
    with pytest.raises(ValueError, match="rows"):
        score(verifier, [[3, 4], [3, 4]], [[5], [5]], cache)
