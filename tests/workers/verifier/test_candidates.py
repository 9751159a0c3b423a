"""Batched, cached candidate scoring against one-candidate-at-a-time forward passes."""

from __future__ import annotations

import pytest
import torch

from tests.workers.verifier.helpers import naive_score, random_verifier
from workers.verifier import TokenVerifier, VerifierCache, candidate_attention_mask
from workers.verifier import score_candidates as score
from workers.verifier.candidates import CATCH_UP_TOKENS

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


def test_a_row_joining_with_a_long_prompt_is_caught_up_on_its_own() -> None:
    """A new row with more than CATCH_UP_TOKENS pending tokens is fed in its own pass; the
    cached rows only get invalid slots for its width, and every score stays exact."""
    verifier = random_verifier(3)
    cache = VerifierCache()
    score(verifier, PREFIXES, CANDIDATES, cache)
    prompt = [(5 * i + 1) % 40 for i in range(CATCH_UP_TOKENS + 7)]
    sequences = [[*p, 2] for p in PREFIXES] + [prompt]
    candidates = [*CANDIDATES, [4, 6]]
    cache.realign(sequences)
    scores = score(verifier, sequences, candidates, cache)
    _assert_matches_naive(verifier, sequences, candidates, scores)
    assert cache.valid is not None
    assert cache.valid.sum(-1).tolist() == [len(s) for s in sequences]


def test_compaction_bounds_the_cache_as_rows_come_and_go() -> None:
    """Rows finishing and long-prompt rows joining, step after step: the padding they leave
    is dropped (the cache stays under twice the longest row plus the compaction floor) and
    scores stay equal to scoring from scratch."""
    verifier = random_verifier(4)
    cache = VerifierCache()
    sequences = [list(p) for p in PREFIXES]
    longest = 0
    for step in range(24):
        if step % 3 == 2:  # the oldest row finishes, a row with a long prompt joins
            sequences = [*sequences[1:], [(step * 7 + i) % 40 for i in range(20 + step)]]
        else:
            sequences = [[*s, (step + len(s)) % 40] for s in sequences]
        candidates = [[(len(s) + j) % 40 for j in range(1 + len(s) % 3)] for s in sequences]
        cache.realign(sequences)
        cached = score(verifier, sequences, candidates, cache)
        assert torch.allclose(cached, score(verifier, sequences, candidates), atol=1e-5)
        longest = max(len(s) for s in sequences)
        assert cache.valid is not None
        assert cache.cache is not None
        assert cache.valid.shape[1] == cache.cache.get_seq_length()
        assert cache.valid.shape[1] < 2 * longest + 64
    assert cache.valid.sum(-1).tolist() == [len(s) for s in sequences]


def test_compact_keeps_each_rows_slots_in_order() -> None:
    """Compaction gathers each row's valid slots to the front; keys move with them."""
    verifier = random_verifier()
    cache = VerifierCache()
    # Row 0 is caught up on its own (70 slots), then row 1's two tokens go after them.
    score(verifier, [[3] * 70, [4, 5]], [[6], [7]], cache)
    assert cache.valid is not None
    assert cache.cache is not None
    keys_before = cache.cache.layers[0].keys
    assert keys_before is not None
    valid = cache.valid.clone()
    valid[0, 2:] = False  # pretend row 0 keeps only its first two slots
    cache.valid = valid
    cache.tokens[0] = (3, 3)
    cache.compact()
    assert cache.valid.tolist() == [[True, True], [True, True]]
    keys_after = cache.cache.layers[0].keys
    assert keys_after is not None
    assert torch.equal(keys_after[0], keys_before[0, :, :2])
    assert torch.equal(keys_after[1], keys_before[1, :, 70:])
