"""Token Assorted's randomised replacement (arXiv 2502.03275): for each training example a
number m is drawn at random, and the first m chunks of its chain of thought (L text tokens
each) are replaced by their latent codes, between ``<|start_latent|>`` and ``<|end_latent|>``.

The draw for example i depends only on the schedule's seed and i (not on the order examples
are made in, nor on other examples), so a resumed run makes the same data. Only whole chunks
are replaced (the VQ-VAE codes chunks of exactly L tokens): m lies in 0..(number of whole
chunks), uniform by default (optionally capped), or uniform over given ``choices`` (each
clipped to the chunks the example has). m = 0 leaves the chain as text, without delimiters.

Example:
    >>> from workers.latent import LatentVocabulary
    >>> vocabulary = LatentVocabulary(first_id=100, count=4, start_id=104, end_id=105)
    >>> replace_chunks([1, 2, 3, 4, 5], codes=[3, 0], m=2, chunk_tokens=2, vocabulary=vocabulary)
    [104, 103, 100, 105, 5]
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from workers.latent import LatentVocabulary

__all__ = ["ReplacementSchedule", "replace_chunks", "whole_chunks"]


def whole_chunks(token_ids: Sequence[int], chunk_tokens: int) -> list[tuple[int, ...]]:
    """The whole chunks of ``chunk_tokens`` tokens at the start of ``token_ids`` (a shorter
    tail is left out)."""
    if chunk_tokens < 1:
        raise ValueError(f"chunk_tokens must be >= 1, got {chunk_tokens}")
    count = len(token_ids) // chunk_tokens
    return [tuple(token_ids[i * chunk_tokens : (i + 1) * chunk_tokens]) for i in range(count)]


@dataclass(frozen=True, slots=True)
class ReplacementSchedule:
    """Draws m, the number of leading chunks to replace, for each example."""

    seed: int = 0
    max_chunks: int | None = None  # cap on m (None: every whole chunk may go)
    choices: tuple[int, ...] | None = None  # draw m from these instead (clipped per example)

    def __post_init__(self) -> None:
        if self.max_chunks is not None and self.max_chunks < 0:
            raise ValueError(f"max_chunks must be >= 0, got {self.max_chunks}")
        if self.choices is not None and (not self.choices or min(self.choices) < 0):
            raise ValueError(f"choices must be non-empty and >= 0, got {self.choices}")

    def draw(self, index: int, chunks: int) -> int:
        """m for example ``index``, whose chain of thought has ``chunks`` whole chunks."""
        if chunks < 0:
            raise ValueError(f"chunks must be >= 0, got {chunks}")
        rng = random.Random(f"{self.seed}:{index}")
        if self.choices is not None:
            return min(rng.choice(self.choices), chunks)
        top = chunks if self.max_chunks is None else min(chunks, self.max_chunks)
        return rng.randint(0, top)


def replace_chunks(
    token_ids: Sequence[int],
    *,
    codes: Sequence[int],
    m: int,
    chunk_tokens: int,
    vocabulary: LatentVocabulary,
) -> list[int]:
    """``token_ids`` (a chain of thought) with its first ``m`` chunks replaced by the latent
    ids of ``codes`` (one per chunk, at least m of them), delimited; m = 0 returns it as is."""
    if m < 0 or m * chunk_tokens > len(token_ids):
        raise ValueError(
            f"cannot replace {m} chunks of {chunk_tokens} tokens in {len(token_ids)} tokens"
        )
    if len(codes) < m:
        raise ValueError(f"{m} chunks to replace but only {len(codes)} codes")
    if m == 0:
        return list(token_ids)
    latent = [vocabulary.code_id(c) for c in codes[:m]]
    rest = list(token_ids[m * chunk_tokens :])
    return [vocabulary.start_id, *latent, vocabulary.end_id, *rest]
