"""Training data for Token Assorted fine-tuning: the VQ-VAE's chunk set, and one example's
target with its first m chunks replaced by latent codes.

A target is the chain of thought (replaced as ``replacement.replace_chunks`` does) followed
by the answer; the loss is taken on the target only (the prompt is context). The text-CoT
baseline is the same example with m = 0, so both fine-tunes see the same data.

Example:
    >>> example = latent_example(  # doctest: +SKIP
    ...     7, prompt_ids, cot_ids, answer_ids, vqvae=vqvae, schedule=schedule,
    ...     vocabulary=vocabulary)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch

from system2.pipelines.latent.replacement import ReplacementSchedule, replace_chunks, whole_chunks
from workers.latent import ChunkVQVAE, LatentVocabulary

__all__ = ["LatentExample", "chunk_matrix", "latent_example"]


@dataclass(frozen=True, slots=True)
class LatentExample:
    prompt_ids: tuple[int, ...]
    target_ids: tuple[int, ...]  # chain of thought (first m chunks latent) + answer
    m: int  # chunks replaced

    @property
    def input_ids(self) -> tuple[int, ...]:
        return self.prompt_ids + self.target_ids

    @property
    def labels(self) -> tuple[int, ...]:
        """Next-token labels for ``input_ids``: -100 (ignored) on the prompt."""
        return (-100,) * len(self.prompt_ids) + self.target_ids


def chunk_matrix(chains: Iterable[Sequence[int]], chunk_tokens: int) -> torch.Tensor:
    """Every whole chunk of every chain of thought, as [chunks, L] token ids (the VQ-VAE's
    training set)."""
    rows = [chunk for chain in chains for chunk in whole_chunks(chain, chunk_tokens)]
    if not rows:
        raise ValueError(f"no chain of thought has a whole chunk of {chunk_tokens} tokens")
    return torch.tensor(rows, dtype=torch.long)


def latent_example(
    index: int,
    prompt_ids: Sequence[int],
    cot_ids: Sequence[int],
    answer_ids: Sequence[int],
    *,
    vqvae: ChunkVQVAE,
    schedule: ReplacementSchedule,
    vocabulary: LatentVocabulary,
) -> LatentExample:
    """Example ``index``: m drawn by ``schedule``, the first m chunks of ``cot_ids`` coded by
    ``vqvae`` and replaced."""
    chunk_tokens = vqvae.config.chunk_tokens
    if vocabulary.count < vqvae.config.codebook_size:
        raise ValueError(
            f"the vocabulary has {vocabulary.count} latent ids but the VQ-VAE "
            f"{vqvae.config.codebook_size} codes"
        )
    chunks = whole_chunks(cot_ids, chunk_tokens)
    m = schedule.draw(index, len(chunks))
    codes = vqvae.encode(torch.tensor(chunks[:m], dtype=torch.long)).tolist() if m else []
    target = replace_chunks(
        cot_ids, codes=codes, m=m, chunk_tokens=chunk_tokens, vocabulary=vocabulary
    )
    return LatentExample(tuple(prompt_ids), tuple(target) + tuple(answer_ids), m)
