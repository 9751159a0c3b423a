"""Batched log P(continuation | prompt) with a transformers causal LM.

The prompt is prefilled once; its KV cache is copied to every continuation row, so a call
scoring k continuations of one prompt computes the prompt once, not k times (for listener
matrices, where prompts are as long as the continuations, this is most of the work).
Continuations are right-padded after the shared prompt. Rows are chunked so the
[rows, positions, vocab] logits tensor stays under a budget.

``score_with_alternatives`` also returns, at every continuation position, the ``top`` most
probable tokens there (from the same logits, so at no extra forward cost).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["ScoredContinuation", "score_continuations", "score_with_alternatives"]

_LOGIT_BUDGET = 64 * 1024 * 1024  # float32 logits kept per forward pass (256 MB)


@dataclass(slots=True)
class ScoredContinuation:
    """Per-token log-probs of one continuation and, per position, the top alternatives:
    ``top_ids[i]`` / ``top_logprobs[i]`` most probable first (empty lists when top = 0)."""

    logprobs: list[float]
    top_ids: list[list[int]] = field(default_factory=list)
    top_logprobs: list[list[float]] = field(default_factory=list)


def score_continuations(
    model: Any,
    prompt_ids: Sequence[int],
    continuations: Sequence[Sequence[int]],
    *,
    pad_token_id: int,
) -> list[list[float]]:
    """Per-token log-probs of each continuation given the (non-empty) prompt."""
    scored = score_with_alternatives(
        model, prompt_ids, continuations, pad_token_id=pad_token_id, top=0
    )
    return [s.logprobs for s in scored]


@torch.inference_mode()
def score_with_alternatives(
    model: Any,
    prompt_ids: Sequence[int],
    continuations: Sequence[Sequence[int]],
    *,
    pad_token_id: int,
    top: int,
) -> list[ScoredContinuation]:
    """``score_continuations`` plus the ``top`` most probable tokens at every position."""
    if not prompt_ids:
        raise ValueError("scoring needs at least one prompt token to condition on")
    if top < 0:
        raise ValueError(f"top must be >= 0, got {top}")
    prompt = torch.tensor([list(prompt_ids)], dtype=torch.long)
    prefill = model(input_ids=prompt, use_cache=True, logits_to_keep=1)
    first = torch.log_softmax(prefill.logits[0, -1].float(), dim=-1)
    vocab = int(model.config.vocab_size)
    top = min(top, int(first.shape[-1]))
    results: list[ScoredContinuation] = []
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
                model, prefill.past_key_values, len(prompt_ids), first, chunk, pad_token_id, top
            )
        )
        start = stop
    return results


def _top(logprobs: torch.Tensor, top: int) -> tuple[list[list[int]], list[list[float]]]:
    """The ``top`` best (ids, log-probs) of each row of ``[positions, vocab]`` log-probs."""
    values, ids = torch.topk(logprobs, top, dim=-1, sorted=True)
    return ids.tolist(), values.tolist()


def _score_chunk(
    model: Any,
    prompt_cache: Any,
    prompt_len: int,
    first: torch.Tensor,
    continuations: Sequence[Sequence[int]],
    pad_token_id: int,
    top: int,
) -> list[ScoredContinuation]:
    rows = len(continuations)
    longest = max(len(c) for c in continuations)
    first_ids, first_lps = _top(first.unsqueeze(0), top) if top else ([], [])
    firsts = [
        ScoredContinuation([float(first[c[0]])], list(first_ids), list(first_lps))
        if c
        else ScoredContinuation([])
        for c in continuations
    ]
    if longest <= 1:
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
        head = firsts[i]
        if len(c) < 2:
            results.append(head)
            continue
        row = logprobs[i, : len(c) - 1]
        targets = torch.tensor(list(c[1:]), dtype=torch.long)
        picked = row.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        top_ids, top_lps = _top(row, top) if top else ([], [])
        results.append(
            ScoredContinuation(
                head.logprobs + picked.tolist(), head.top_ids + top_ids, head.top_logprobs + top_lps
            )
        )
    return results
