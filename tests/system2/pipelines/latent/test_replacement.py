"""Token Assorted's randomised replacement schedule and the training examples built with it."""

from __future__ import annotations

import pytest
import torch

from system2.pipelines.latent import (
    ReplacementSchedule,
    chunk_matrix,
    latent_example,
    replace_chunks,
    whole_chunks,
)
from workers.latent import ChunkVQVAE, LatentVocabulary, VQVAEConfig

VOCABULARY = LatentVocabulary(first_id=100, count=16, start_id=116, end_id=117)


def test_draws_are_seeded_per_example_and_independent_of_order() -> None:
    """The same seed gives the same m for an example whatever was drawn before; another
    seed gives other draws; every m lies in 0..chunks."""
    schedule = ReplacementSchedule(seed=3)
    forward = [schedule.draw(i, 5) for i in range(200)]
    backward = [schedule.draw(i, 5) for i in reversed(range(200))][::-1]
    assert forward == backward
    assert forward != [ReplacementSchedule(seed=4).draw(i, 5) for i in range(200)]
    assert set(forward) == set(range(6))  # uniform over 0..5: every value shows up


def test_draws_respect_the_cap_and_choices() -> None:
    """m never exceeds max_chunks or the example's chunks; choices are clipped per example."""
    capped = ReplacementSchedule(seed=0, max_chunks=2)
    assert {capped.draw(i, 9) for i in range(100)} == {0, 1, 2}
    assert {capped.draw(i, 1) for i in range(100)} == {0, 1}
    chosen = ReplacementSchedule(seed=0, choices=(0, 4, 8))
    assert {chosen.draw(i, 10) for i in range(100)} == {0, 4, 8}
    assert {chosen.draw(i, 5) for i in range(100)} == {0, 4, 5}
    assert ReplacementSchedule().draw(0, 0) == 0


def test_bad_schedule_settings_are_refused() -> None:
    """Negative caps, empty or negative choices and negative chunk counts are errors."""
    for kwargs in ({"max_chunks": -1}, {"choices": ()}, {"choices": (1, -2)}):
        with pytest.raises(ValueError, match="must be"):
            ReplacementSchedule(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="chunks must be"):
        ReplacementSchedule().draw(0, -1)


def test_replacement_delimits_the_codes_and_keeps_the_rest() -> None:
    """The first m chunks become start, m latent ids, end; the rest stays text; m = 0 is the
    chain unchanged."""
    chain = list(range(1, 12))  # 11 tokens: 3 whole chunks of 3, and a tail of 2
    assert whole_chunks(chain, 3) == [(1, 2, 3), (4, 5, 6), (7, 8, 9)]
    replaced = replace_chunks(chain, codes=[5, 0, 9], m=2, chunk_tokens=3, vocabulary=VOCABULARY)
    assert replaced == [116, 105, 100, 117, 7, 8, 9, 10, 11]
    assert replace_chunks(chain, codes=[], m=0, chunk_tokens=3, vocabulary=VOCABULARY) == chain
    with pytest.raises(ValueError, match="only 1 codes"):
        replace_chunks(chain, codes=[1], m=2, chunk_tokens=3, vocabulary=VOCABULARY)
    with pytest.raises(ValueError, match="cannot replace 4 chunks"):
        replace_chunks(chain, codes=[1] * 4, m=4, chunk_tokens=3, vocabulary=VOCABULARY)
    with pytest.raises(ValueError, match="outside"):
        replace_chunks(chain, codes=[16], m=1, chunk_tokens=3, vocabulary=VOCABULARY)


def test_examples_replace_the_drawn_chunks_with_the_vqvae_codes() -> None:
    """Each example's target holds, after the start delimiter, the VQ-VAE codes of its first
    m chunks, then the rest of the chain and the answer; labels skip the prompt."""
    vqvae = ChunkVQVAE(
        VQVAEConfig(vocab_size=50, chunk_tokens=4, codebook_size=16, dim=16, layers=1, heads=2),
        seed=0,
    ).eval()
    schedule = ReplacementSchedule(seed=1)
    chain, answer, prompt = list(range(10, 30)), [40, 41], [2, 3]  # 5 whole chunks
    seen = set()
    for index in range(30):
        example = latent_example(
            index, prompt, chain, answer, vqvae=vqvae, schedule=schedule, vocabulary=VOCABULARY
        )
        m = schedule.draw(index, 5)
        assert example.m == m
        seen.add(m)
        if m == 0:
            assert example.target_ids == (*chain, *answer)
            continue
        codes = vqvae.encode(torch.tensor(whole_chunks(chain, 4)[:m])).tolist()
        assert example.target_ids == (116, *(100 + c for c in codes), 117, *chain[4 * m :], *answer)
        assert example.labels == (-100, -100, *example.target_ids)
        assert example.input_ids == (2, 3, *example.target_ids)
    assert len(seen) > 2
    small = LatentVocabulary(first_id=100, count=8, start_id=108, end_id=109)
    with pytest.raises(ValueError, match="8 latent ids but the VQ-VAE 16 codes"):
        latent_example(0, prompt, chain, answer, vqvae=vqvae, schedule=schedule, vocabulary=small)


def test_chunk_matrix_collects_whole_chunks() -> None:
    """The VQ-VAE's training set holds every whole chunk of every chain, tails dropped."""
    matrix = chunk_matrix([[1, 2, 3, 4, 5], [6, 7], [8, 9, 10, 11]], 2)
    assert matrix.tolist() == [[1, 2], [3, 4], [6, 7], [8, 9], [10, 11]]
    with pytest.raises(ValueError, match="no chain of thought"):
        chunk_matrix([[1]], 2)
