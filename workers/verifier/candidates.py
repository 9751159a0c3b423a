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

Two things keep a long-running batch (an engine's, where rows come and go) cheap. Rows with
more than ``CATCH_UP_TOKENS`` pending tokens (a new row: its whole prompt) are first fed in
a pass of their own, so the other rows are not padded to a prompt's width. And the padding
slots such passes leave in every other row are dropped once they make up half the cache
(``VerifierCache.compact``): slot order means nothing (positions are explicit and the mask
says who sees whom), so each row's valid slots are simply gathered to the front.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

from workers.verifier.network import TokenVerifier
from workers.verifier.scoring import additive_mask

__all__ = ["CATCH_UP_TOKENS", "VerifierCache", "score_candidates"]

CATCH_UP_TOKENS = 8
"""Rows with more pending tokens than this get a forward pass of their own (module doc)."""
_MIN_COMPACTION = 64  # never compact for fewer wasted slots than this


class VerifierCache:
    """The verifier's KV cache for a batch of sequences, row i caching ``tokens[i]``.

    ``valid`` ([rows, slots], bool) marks the cache slots holding real tokens (slots of other
    rows' padding are invalid). An empty cache takes any number of rows on first use.
    ``catch_up_tokens`` (None: never) and ``compaction`` switch off the two economies of the
    module doc, for measuring them.
    """

    def __init__(
        self, *, catch_up_tokens: int | None = CATCH_UP_TOKENS, compaction: bool = True
    ) -> None:
        self.catch_up_tokens = catch_up_tokens
        self.compaction = compaction
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

    def compact(self) -> None:
        """Drop the slots no row uses, once they are at least half the cache."""
        if not self.compaction or self.cache is None or self.valid is None or not self.rows:
            return
        counts = self.valid.sum(-1)
        kept = int(counts.max())
        if self.valid.shape[1] - kept < max(kept, _MIN_COMPACTION):
            return
        # Each row's valid slots first, in their order; then its invalid ones.
        order = torch.argsort((~self.valid).to(torch.int8), dim=-1, stable=True)[:, :kept]
        gathered = []
        for keys, values in _key_values(self.cache):
            index = order[:, None, :, None].expand(-1, keys.shape[1], -1, keys.shape[-1])
            gathered.append((keys.gather(2, index), values.gather(2, index)))
        self.cache = DynamicCache(gathered)
        self.valid = torch.arange(kept, device=self.valid.device) < counts.unsqueeze(-1)

    def subset(self, index: Sequence[int]) -> VerifierCache:
        """A new cache holding copies of rows ``index`` (this one is left as it is)."""
        sub = VerifierCache(catch_up_tokens=None, compaction=self.compaction)
        sub.tokens = [self.tokens[i] for i in index]
        if self.cache is None or self.valid is None:
            return sub
        rows = torch.tensor(list(index), dtype=torch.long, device=self.valid.device)
        sub.cache = DynamicCache([(k[rows], v[rows]) for k, v in _key_values(self.cache)])
        sub.valid = self.valid[rows]
        return sub

    def splice(self, index: Sequence[int], sub: VerifierCache) -> None:
        """Replace rows ``index`` with ``sub``'s rows, whole; the cache grows to the longer
        of the two, the shorter rows padded with invalid slots."""
        if sub.cache is None or sub.valid is None:
            return
        rows = torch.tensor(list(index), dtype=torch.long, device=sub.valid.device)
        old = 0 if self.cache is None or self.valid is None else self.valid.shape[1]
        new = sub.valid.shape[1]
        length = max(old, new)
        mine = _key_values(self.cache) if self.cache is not None and old else []
        layers = []
        for j, (their_keys, their_values) in enumerate(_key_values(sub.cache)):
            shape = (self.rows, their_keys.shape[1], length, their_keys.shape[-1])
            keys, values = their_keys.new_zeros(shape), their_values.new_zeros(shape)
            if mine:
                keys[:, :, :old], values[:, :, :old] = mine[j]
                keys[rows], values[rows] = 0.0, 0.0
            keys[rows, :, :new], values[rows, :, :new] = their_keys, their_values
            layers.append((keys, values))
        self.cache = DynamicCache(layers)
        valid = torch.zeros((self.rows, length), dtype=torch.bool, device=rows.device)
        if self.valid is not None:
            valid[:, :old] = self.valid
        valid[rows] = False
        valid[rows, :new] = sub.valid
        self.valid = valid
        for j, i in enumerate(index):
            self.tokens[i] = sub.tokens[j]


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
    pending = _pending(state, prefixes)
    limit = state.catch_up_tokens
    behind = [b for b, fed in enumerate(pending) if limit is not None and len(fed) > limit]
    if behind and len(behind) < rows:
        sub = state.subset(behind)
        score_candidates(verifier, [prefixes[b] for b in behind], [[] for _ in behind], sub)
        state.splice(behind, sub)
        for b in behind:  # now cached whole
            pending[b] = []
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
    state.compact()
    candidate_scores = scores[:, p_width:]
    return torch.where(cand_real, candidate_scores, torch.zeros_like(candidate_scores))


def _pending(state: VerifierCache, prefixes: Sequence[Sequence[int]]) -> list[list[int]]:
    """Each row's tokens not yet in the cache."""
    pending = []
    for cached, prefix in zip(state.tokens, prefixes, strict=True):
        if tuple(prefix[: len(cached)]) != cached:
            raise ValueError("a cached row is not a prefix of its sequence")
        pending.append(list(prefix[len(cached) :]))
    return pending


def _key_values(cache: DynamicCache) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Each layer's keys and values, ``[rows, heads, slots, dim]``."""
    pairs = []
    for layer in cache.layers:
        if not isinstance(layer, DynamicLayer) or layer.keys is None or layer.values is None:
            raise TypeError("the verifier cache holds full-attention key/value layers only")
        pairs.append((layer.keys, layer.values))
    return pairs


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
