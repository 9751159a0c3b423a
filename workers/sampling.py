"""Choosing the next token for a batch of rows that each have their own sampling settings.

Pure tensor functions. Sampling uses the exponential-race form of the Gumbel-max trick,
argmax_v p(v) / E_v with E_v ~ Exp(1), drawn from a per-row ``torch.Generator``: a row's
draws depend only on its own seed, never on which other rows share its batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

__all__ = ["RowSampling", "filter_logits", "select_tokens"]


@dataclass(frozen=True, slots=True)
class RowSampling:
    """One row's settings; ``temperature == 0`` is greedy."""

    temperature: float
    top_p: float = 1.0
    top_k: int = 0


def filter_logits(logits: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    """Mask (to -inf) what top-k and nucleus (top-p) filtering exclude from a 1-D logit row.

    The highest-probability token is always kept.
    """
    if top_k <= 0 and top_p >= 1.0:
        return logits
    sorted_logits, order = torch.sort(logits, descending=True)
    remove = torch.zeros_like(sorted_logits, dtype=torch.bool)
    if top_k > 0:
        remove[top_k:] = True
    if top_p < 1.0:
        cumulative = torch.softmax(sorted_logits, dim=-1).cumsum(dim=-1)
        # Remove a token once the mass *before* it already reaches top_p.
        remove |= (cumulative - torch.softmax(sorted_logits, dim=-1)) >= top_p
    remove[0] = False
    filtered = logits.clone()
    filtered[order[remove]] = float("-inf")
    return filtered


def select_tokens(
    logits: torch.Tensor,
    settings: Sequence[RowSampling],
    generators: Sequence[torch.Generator | None],
) -> torch.Tensor:
    """Pick one token id per row of ``logits`` ([rows, vocab], float32)."""
    chosen = torch.argmax(logits, dim=-1)
    for row, (setting, generator) in enumerate(zip(settings, generators, strict=True)):
        if setting.temperature == 0.0:
            continue
        row_logits = filter_logits(logits[row] / setting.temperature, setting.top_k, setting.top_p)
        probs = torch.softmax(row_logits, dim=-1)
        race = torch.empty_like(probs).exponential_(generator=generator)
        chosen[row] = torch.argmax(probs / race)
    return chosen
