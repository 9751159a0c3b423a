"""The LLM2 verifier's arithmetic as pure tensor functions (no model calls).

Kept model-free so every backend (the transformers decode loop here, a vLLM adapter later)
computes candidate sets, attention masks, guided logits and the training loss the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = [
    "CandidateSet",
    "additive_mask",
    "bradley_terry_loss",
    "candidate_attention_mask",
    "guided_logits",
    "plausible_candidates",
]


def additive_mask(allowed: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A boolean ``[batch, queries, keys]`` visibility tensor as a 4D additive mask.

    Visible entries are 0, hidden ones ``torch.finfo(dtype).min`` (not -inf, so a row that
    hides everything cannot turn into NaN); the result is ``[batch, 1, queries, keys]``, the
    form transformers passes through unchanged to eager and sdpa attention.
    """
    if allowed.dim() != 3 or allowed.dtype != torch.bool:
        raise ValueError("allowed must be a boolean [batch, queries, keys] tensor")
    mask = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device)
    mask.masked_fill_(~allowed, torch.finfo(dtype).min)
    return mask.unsqueeze(1)


def candidate_attention_mask(
    prefix_len: int, n_candidates: int, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """The ``[1, 1, P + K, P + K]`` additive mask for one prefix followed by K candidates.

    Prefix tokens attend causally; candidate ``j`` (at query ``P + j``) attends to the whole
    prefix and to itself only. Give every candidate ``position_id = P``.
    """
    if prefix_len < 0 or n_candidates < 0:
        raise ValueError("prefix_len and n_candidates must be non-negative")
    size = prefix_len + n_candidates
    allowed = torch.ones(size, size, dtype=torch.bool).tril()
    allowed[prefix_len:, prefix_len:] = torch.eye(n_candidates, dtype=torch.bool)
    return additive_mask(allowed.unsqueeze(0), dtype)


@dataclass(frozen=True, slots=True)
class CandidateSet:
    """Candidate next tokens V_t of each row.

    ``ids`` ([rows, k], most probable first) holds row i's candidates in its first
    ``valid[i].sum()`` slots, padding (id 0, ``valid`` False) after them. ``single`` marks the
    rows with |V_t| = 1, whose verifier call is skipped.
    """

    ids: torch.Tensor
    valid: torch.Tensor
    single: torch.Tensor

    def row(self, index: int) -> list[int]:
        """Row ``index``'s candidate ids, most probable first."""
        return [int(v) for v in self.ids[index][self.valid[index]]]


def plausible_candidates(logits: torch.Tensor, alpha: float, top_k: int) -> CandidateSet:
    """V_t = {v : p(v) >= alpha * max_u p(u)}, capped at the ``top_k`` most probable tokens.

    Rule (the cap is ours; the paper gives only the alpha rule, "else top-k"): the alpha test
    runs in log space on the raw logits, ``z_v - max z >= log(alpha)``, so temperature plays no
    part; tokens with logit -inf are never candidates; ``top_k > 0`` keeps at most the top_k
    most probable of the tokens that pass (ties broken by ``torch.topk``), ``top_k = 0`` means
    no cap. ``alpha = 0`` lets every finite token pass, i.e. plain top-k. The most probable
    token always passes, so |V_t| >= 1.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    if top_k < 0:
        raise ValueError(f"top_k must be >= 0, got {top_k}")
    if alpha == 0.0 and top_k == 0:
        raise ValueError("alpha = 0 needs a top_k cap (otherwise V_t is the whole vocabulary)")
    if logits.dim() != 2:
        raise ValueError("logits must be [rows, vocab]")
    if top_k > 0:  # the cap bounds V_t: test the top_k most probable only (one vocab pass)
        values, ids = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1, sorted=True)
        passing = _passing(values, values[:, :1], alpha)
        counts = passing.sum(dim=-1).clamp(min=1)
        width = int(counts.max()) if counts.numel() else 0
        ids = ids[:, :width]
    else:
        passing = _passing(logits, logits.max(dim=-1, keepdim=True).values, alpha)
        counts = passing.sum(dim=-1).clamp(min=1)
        width = int(counts.max()) if counts.numel() else 0
        ids = torch.topk(logits, width, dim=-1, sorted=True).indices
    valid = torch.arange(width, device=logits.device) < counts.unsqueeze(-1)
    ids = torch.where(valid, ids, torch.zeros_like(ids))
    return CandidateSet(ids=ids, valid=valid, single=counts == 1)


def _passing(logits: torch.Tensor, best: torch.Tensor, alpha: float) -> torch.Tensor:
    """Finite entries of ``logits`` within log(alpha) of their row's ``best`` (all finite
    ones when alpha = 0)."""
    finite = torch.isfinite(logits)
    return finite & (logits - best >= math.log(alpha)) if alpha > 0.0 else finite


def guided_logits(
    logits: torch.Tensor,
    candidate_ids: torch.Tensor,
    scores: torch.Tensor,
    beta: float,
    valid: torch.Tensor | None = None,
) -> torch.Tensor:
    """z*[v] = z[v] + beta * s(v) for v in V_t, -inf elsewhere, for ``[rows, vocab]`` logits.

    ``candidate_ids`` and ``scores`` are ``[rows, k]``; slots where ``valid`` is False are
    ignored (all slots count when ``valid`` is None). Valid ids of one row must be distinct.
    """
    if valid is None:
        valid = torch.ones_like(candidate_ids, dtype=torch.bool)
    scores = scores.to(device=logits.device, dtype=logits.dtype)
    # One write pass over the vocabulary: -inf everywhere, then each valid slot's z + beta * s
    # (padding slots bring -inf, which the max leaves alone, so their ids do not matter).
    moved = logits.gather(-1, candidate_ids) + beta * scores
    neg_inf = torch.tensor(float("-inf"), dtype=logits.dtype, device=logits.device)
    out = torch.full_like(logits, float("-inf"))
    return out.scatter_reduce_(-1, candidate_ids, torch.where(valid, moved, neg_inf), "amax")


def bradley_terry_loss(pos_scores: torch.Tensor, neg_scores: torch.Tensor) -> torch.Tensor:
    """L = -mean log sigmoid(s+ - s-), the verifier's only training loss."""
    if pos_scores.shape != neg_scores.shape:
        raise ValueError("pos_scores and neg_scores must have the same shape")
    return -F.logsigmoid(pos_scores - neg_scores).mean()
