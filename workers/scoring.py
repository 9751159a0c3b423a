"""Batched log P(continuation | prompt) with a transformers causal LM.

The prompt is prefilled once; its KV cache is copied to every continuation row, so a call
scoring k continuations of one prompt computes the prompt once, not k times (for listener
matrices, where prompts are as long as the continuations, this is most of the work).
Continuations are right-padded after the shared prompt. Rows are chunked so the
[rows, positions, vocab] logits tensor stays under a budget.
"""

from __future__ import annotations

import copy
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
    """Per-token log-probs of each continuation given the (non-empty) prompt."""
    if not prompt_ids:
        raise ValueError("scoring needs at least one prompt token to condition on")
    prompt = torch.tensor([list(prompt_ids)], dtype=torch.long)
    prefill = model(input_ids=prompt, use_cache=True, logits_to_keep=1)
    first = torch.log_softmax(prefill.logits[0, -1].float(), dim=-1)
    vocab = int(model.config.vocab_size)
    results: list[list[float]] = []
    start = 0
    while start < len(continuations):
        longest = len(continuations[start])
        stop = start + 1
        while stop < len(continuations):
            widest = max(longest, len(continuations[stop]))
            if (stop + 1 - start) * widest * vocab > _LOGIT_BUDGET:
                break
            longest, stop = widest, stop + 1
        chunk = continuations[start:stop]
        results.extend(
            _score_chunk(
                model, prefill.past_key_values, len(prompt_ids), first, chunk, pad_token_id
            )
        )
        start = stop
    return results


def _score_chunk(
    model: Any,
    prompt_cache: Any,
    prompt_len: int,
    first: torch.Tensor,
    continuations: Sequence[Sequence[int]],
    pad_token_id: int,
) -> list[list[float]]:
    rows = len(continuations)
    longest = max(len(c) for c in continuations)
    if longest == 0:
        return [[] for _ in continuations]
    firsts = [[float(first[c[0]])] if c else [] for c in continuations]
    if longest == 1:
        return firsts
    # The last token of each continuation predicts nothing we score; feed the rest.
    width = longest - 1
    ids = torch.full((rows, width), pad_token_id, dtype=torch.long)
    mask = torch.zeros((rows, prompt_len + width), dtype=torch.long)
    mask[:, :prompt_len] = 1
    for i, c in enumerate(continuations):
        fed = list(c[:-1])
        ids[i, : len(fed)] = torch.tensor(fed, dtype=torch.long)
        mask[i, prompt_len : prompt_len + len(fed)] = 1
    positions = torch.arange(prompt_len, prompt_len + width).expand(rows, width)
    cache = copy.deepcopy(prompt_cache)  # the forward pass appends to the cache it is given
    cache.batch_repeat_interleave(rows)
    out = model(
        input_ids=ids,
        attention_mask=mask,
        position_ids=positions,
        past_key_values=cache,
        use_cache=True,
    )
    # out.logits[i, t] predicts continuation token t + 1.
    logprobs = torch.log_softmax(out.logits.float(), dim=-1)
    results = []
    for i, c in enumerate(continuations):
        if len(c) < 2:
            results.append(firsts[i])
            continue
        targets = torch.tensor(list(c[1:]), dtype=torch.long)
        picked = logprobs[i, : len(c) - 1].gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        results.append(firsts[i] + picked.tolist())
    return results
