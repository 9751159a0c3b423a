"""Batched log P(continuation | prompt) with a transformers causal LM.

Rows are left-padded so that every continuation ends at the last position; then only the
last ``longest continuation + 1`` positions need logits (``logits_to_keep``), which keeps
the [rows, positions, vocab] tensor small. Rows are chunked so it stays under a budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

__all__ = ["score_continuations"]

_LOGIT_BUDGET = 64 * 1024 * 1024  # float32 logits kept per forward pass (256 MB)


@torch.inference_mode()
def score_continuations(
    model: Any,
    prompt_ids: Sequence[int],
    continuations: Sequence[Sequence[int]],
    *,
    pad_token_id: int,
) -> list[list[float]]:
    """Per-token log-probs of each continuation given the prompt."""
    vocab = int(model.config.vocab_size)
    results: list[list[float]] = []
    start = 0
    while start < len(continuations):
        longest = len(continuations[start])
        stop = start + 1
        while stop < len(continuations):
            widest = max(longest, len(continuations[stop]))
            if (stop + 1 - start) * (widest + 1) * vocab > _LOGIT_BUDGET:
                break
            longest, stop = widest, stop + 1
        results.extend(_score_chunk(model, prompt_ids, continuations[start:stop], pad_token_id))
        start = stop
    return results


def _score_chunk(
    model: Any,
    prompt_ids: Sequence[int],
    continuations: Sequence[Sequence[int]],
    pad_token_id: int,
) -> list[list[float]]:
    sequences = [list(prompt_ids) + list(c) for c in continuations]
    width = max(len(s) for s in sequences)
    longest = max(len(c) for c in continuations)
    ids = torch.full((len(sequences), width), pad_token_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, seq in enumerate(sequences):
        ids[i, width - len(seq) :] = torch.tensor(seq, dtype=torch.long)
        mask[i, width - len(seq) :] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    out = model(
        input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=longest + 1
    )
    # out.logits[:, k] predicts the token at position width - longest - 1 + k + 1.
    logprobs = torch.log_softmax(out.logits[:, :-1, :].float(), dim=-1)
    targets = ids[:, width - longest :]
    picked = logprobs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return [picked[i, longest - len(c) :].tolist() for i, c in enumerate(continuations)]
