"""Packed training forward: every (position, x+, x-) triplet of a sequence in one pass.

Layout of row b (``T`` = longest context, ``M`` = most triplets in a row):

    [ x_0 .. x_{T_b - 1}, right-padded to T | pos_0, neg_0, pos_1, neg_1, .. padded to 2M ]

where ``T_b`` is the row's largest triplet position. Context tokens attend causally; the
two candidates of triplet j get ``position_id = t_j`` and attend to x_0 .. x_{t_j - 1} and to
themselves only, so s(x_<t, v) is the same as scoring v right after x_<t alone. No cache;
gradients flow (wrap the call in ``torch.no_grad`` to evaluate).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch

from workers.verifier.network import TokenVerifier
from workers.verifier.scoring import additive_mask

__all__ = ["Triplet", "pair_scores"]


class Triplet(NamedTuple):
    """Gold token ``positive`` beats ``negative`` as the token at ``position`` (x_<t given)."""

    position: int
    positive: int
    negative: int


def pair_scores(
    verifier: TokenVerifier,
    sequences: Sequence[Sequence[int]],
    triplets: Sequence[Sequence[Triplet]],
) -> tuple[torch.Tensor, torch.Tensor]:
    """(s+, s-), each ``[total triplets]`` float32, in sequence-then-triplet order.

    ``triplets[i]`` belong to ``sequences[i]``; each position t needs ``0 <= t <= len``.
    """
    if len(sequences) != len(triplets):
        raise ValueError("sequences and triplets must have one entry per row")
    used = [(list(s), list(t)) for s, t in zip(sequences, triplets, strict=True) if t]
    device = verifier.device
    if not used:
        empty = torch.zeros(0, dtype=torch.float32, device=device)
        return empty, empty.clone()
    for sequence, row in used:
        if any(not 0 <= t.position <= len(sequence) for t in row):
            raise ValueError("a triplet position lies outside its sequence")

    rows = len(used)
    context = max(max(t.position for t in row) for _, row in used)
    pairs = max(len(row) for _, row in used)
    width = context + 2 * pairs
    ids = torch.zeros((rows, width), dtype=torch.long)
    positions = torch.zeros((rows, width), dtype=torch.long)
    cutoff = torch.zeros((rows, width), dtype=torch.long)  # a query sees keys < cutoff ...
    real = torch.zeros((rows, width), dtype=torch.bool)
    for b, (sequence, row) in enumerate(used):
        length = max(t.position for t in row)
        ids[b, :length] = torch.tensor(sequence[:length], dtype=torch.long)
        positions[b, :length] = torch.arange(length)
        cutoff[b, :length] = torch.arange(1, length + 1)
        real[b, :length] = True
        for j, triplet in enumerate(row):
            slot = context + 2 * j
            ids[b, slot : slot + 2] = torch.tensor([triplet.positive, triplet.negative])
            positions[b, slot : slot + 2] = triplet.position
            cutoff[b, slot : slot + 2] = triplet.position
            real[b, slot : slot + 2] = True

    keys = torch.arange(width)
    allowed = keys.view(1, 1, -1) < cutoff.unsqueeze(-1)  # ... of the context part,
    allowed &= (keys < context).view(1, 1, -1) & real.unsqueeze(1) & real.unsqueeze(-1)
    allowed[:, keys, keys] = True  # ... and itself
    scores = verifier(
        ids.to(device),
        attention_mask=additive_mask(allowed.to(device), verifier.dtype),
        position_ids=positions.to(device),
    )
    counts = [len(row) for _, row in used]
    select = torch.cat([torch.arange(n) for n in counts])
    batch = torch.cat([torch.full((n,), b) for b, n in enumerate(counts)])
    slots = (context + 2 * select).to(device)
    batch = batch.to(device)
    return scores[batch, slots], scores[batch, slots + 1]
