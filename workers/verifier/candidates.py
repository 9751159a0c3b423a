"""Batched candidate scoring with a reused prefix KV cache: one forward pass per step.

Layout of one call, per row b (``P`` = most pending tokens, ``K`` = most candidates):

    [ cached slots (L) | pending tokens, right-aligned (P) | candidates (K) ]

Pending tokens are the part of the prefix not yet in the cache; each attends to the row's
valid cached slots and the pending tokens up to itself. Every candidate gets
``position_id = len(prefix)`` and attends to the valid cached slots, the row's pending
tokens and itself only. Padding slots attend to themselves only and stay invalid forever.
The mask is a 4D float additive mask in the verifier's dtype, which transformers hands
unchanged to eager and sdpa attention.

transformers appends every position of a forward pass to the cache it is given, so after
the pass the K candidate positions are cropped off the end (``DynamicCache.crop(-K)``): the
cache then holds exactly the prefixes, and the next step feeds only the new tokens.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import DynamicCache

from workers.verifier.network import TokenVerifier
from workers.verifier.scoring import additive_mask

__all__ = ["VerifierCache", "score_candidates"]


class VerifierCache:
    """The verifier's KV cache for a batch of sequences, row i caching ``tokens[i]``.

    ``valid`` ([rows, slots], bool) marks the cache slots holding real tokens (slots of other
    rows' padding are invalid). An empty cache takes any number of rows on first use.
    """

    def __init__(self) -> None:
        self.cache: DynamicCache | None = None
        self.valid: torch.Tensor | None = None
        self.tokens: list[tuple[int, ...]] = []

    @property
    def rows(self) -> int:
        return len(self.tokens)

    def reset(self) -> None:
        """Drop every row (and the memory they hold)."""
        self.cache, self.valid, self.tokens = None, None, []

    def select(self, index: Sequence[int]) -> None:
        """Keep rows ``index`` in that order (repeats allowed); -1 starts an empty row."""
        if list(index) == list(range(self.rows)):
            return
        if not index or all(i < 0 for i in index) or self.cache is None or self.valid is None:
            self.reset()
            self.tokens = [() for _ in index]
            return
        if any(i >= self.rows for i in index):
            raise IndexError("row index out of range")
        rows = torch.tensor([max(i, 0) for i in index], dtype=torch.long, device=self.valid.device)
        fresh = torch.tensor([i < 0 for i in index], dtype=torch.bool, device=self.valid.device)
        self.cache.batch_select_indices(rows)
        self.valid = self.valid[rows] & ~fresh.unsqueeze(-1)
        self.tokens = [self.tokens[i] if i >= 0 else () for i in index]

    def realign(self, sequences: Sequence[Sequence[int]]) -> None:
        """Reorder rows to match ``sequences`` by content, for callers that drop rows.

        Sequence s reuses a row caching ``s[:-1]`` (one new token since the last step) or
        ``s``; each row is used once; rows nothing matches are dropped, and sequences
        nothing matches start empty. Equal contents mean equal caches, so which of two
        identical rows a sequence takes does not matter.
        """
        by_tokens: dict[tuple[int, ...], list[int]] = {}
        for i, cached in enumerate(self.tokens):
            by_tokens.setdefault(cached, []).append(i)
        index = []
        for sequence in sequences:
            key = tuple(sequence)
            matches = by_tokens.get(key[:-1]) or by_tokens.get(key)
            index.append(matches.pop(0) if matches else -1)
        self.select(index)


@torch.inference_mode()
def score_candidates(
    verifier: TokenVerifier,
    prefixes: Sequence[Sequence[int]],
    candidates: Sequence[Sequence[int]],
    cache: VerifierCache | None = None,
) -> torch.Tensor:
    """Scores ``[rows, max k]`` (float32, padding 0) of each row's candidates after its prefix.

    Row i of ``cache`` must cache a prefix of ``prefixes[i]`` (an empty cache fits any batch);
    the call extends it to the whole prefix. A row with no candidates only updates its cache.
    """
    if len(prefixes) != len(candidates):
        raise ValueError("prefixes and candidates must have one entry per row")
    state = cache if cache is not None else VerifierCache()
    if state.rows == 0 and state.cache is None:
        state.tokens = [() for _ in prefixes]
    if state.rows != len(prefixes):
        raise ValueError(f"the cache holds {state.rows} rows, the call has {len(prefixes)}")
    device = verifier.device
    rows = len(prefixes)
    pending = []
    for cached, prefix in zip(state.tokens, prefixes, strict=True):
        if tuple(prefix[: len(cached)]) != cached:
            raise ValueError("a cached row is not a prefix of its sequence")
        pending.append(list(prefix[len(cached) :]))
    p_width = max((len(p) for p in pending), default=0)
    k_width = max((len(c) for c in candidates), default=0)
    if p_width == 0 and k_width == 0:
        return torch.zeros((rows, 0), dtype=torch.float32, device=device)
    if state.cache is None or state.valid is None:
        state.cache = DynamicCache(config=verifier.config)
        state.valid = torch.zeros((rows, 0), dtype=torch.bool, device=device)

    width = p_width + k_width
    ids = torch.zeros((rows, width), dtype=torch.long)
    positions = torch.zeros((rows, width), dtype=torch.long)
    for b, (cached, fed, cands) in enumerate(zip(state.tokens, pending, candidates, strict=True)):
        start = p_width - len(fed)
        ids[b, start:p_width] = torch.tensor(fed, dtype=torch.long)
        positions[b, start:p_width] = torch.arange(len(cached), len(cached) + len(fed))
        ids[b, p_width : p_width + len(cands)] = torch.tensor(list(cands), dtype=torch.long)
        positions[b, p_width : p_width + len(cands)] = len(cached) + len(fed)

    fed_len = torch.tensor([len(p) for p in pending], device=device)
    cand_len = torch.tensor([len(c) for c in candidates], device=device)
    pend_real = torch.arange(p_width, device=device) >= (p_width - fed_len).unsqueeze(-1)
    cand_real = torch.arange(k_width, device=device) < cand_len.unsqueeze(-1)
    allowed = _step_visibility(state.valid, pend_real, cand_real)
    scores = verifier(
        ids.to(device),
        attention_mask=additive_mask(allowed, verifier.dtype),
        position_ids=positions.to(device),
        past_key_values=state.cache,
    )
    if k_width:
        state.cache.crop(-k_width)
    state.valid = torch.cat([state.valid, pend_real], dim=-1)
    state.tokens = [tuple(p) for p in prefixes]
    candidate_scores = scores[:, p_width:]
    return torch.where(cand_real, candidate_scores, torch.zeros_like(candidate_scores))


def _step_visibility(
    valid: torch.Tensor, pend_real: torch.Tensor, cand_real: torch.Tensor
) -> torch.Tensor:
    """Boolean ``[rows, P + K, L + P + K]``: who sees whom in one step (see module doc)."""
    p_width, k_width = pend_real.shape[-1], cand_real.shape[-1]
    width = p_width + k_width
    query_real = torch.cat([pend_real, cand_real], dim=-1)
    old = valid.unsqueeze(1) & query_real.unsqueeze(-1)
    new = torch.zeros((valid.shape[0], width, width), dtype=torch.bool, device=valid.device)
    causal = torch.ones((p_width, p_width), dtype=torch.bool, device=valid.device).tril()
    new[:, :p_width, :p_width] = causal & pend_real.unsqueeze(1) & pend_real.unsqueeze(-1)
    new[:, p_width:, :p_width] = pend_real.unsqueeze(1) & cand_real.unsqueeze(-1)
    diagonal = torch.arange(width, device=valid.device)
    new[:, diagonal, diagonal] = True
    return torch.cat([old, new], dim=-1)
