"""System-2 guided decoding as a ``workers.decoding.LogitsProcessor``.

Each step, for the rows still decoding: V_t from the generator's raw logits
(``plausible_candidates``), the verifier's scores of V_t (one batched forward for all rows,
skipped for rows with |V_t| = 1), then z* = z + beta * s on V_t and -inf elsewhere.

Rows are tracked by content: ``decode_batch`` drops finished rows and passes each remaining
row's prompt + generated ids, so the processor's cache is realigned each step to the row
caching that sequence minus its newest token (``VerifierCache.realign``). No row ids are
needed, a new ``decode_batch`` call simply starts fresh rows, and the last call's cache is
held until the next call or ``reset()``. One processor serves one decode loop at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from workers.verifier.candidates import VerifierCache, score_candidates
from workers.verifier.network import TokenVerifier
from workers.verifier.scoring import guided_logits, plausible_candidates

__all__ = ["GuidanceStats", "VerifierLogitsProcessor"]


@dataclass(slots=True)
class GuidanceStats:
    """Running counts: row-steps guided, row-steps skipped (|V_t| = 1), candidates scored."""

    verified_rows: int = 0
    skipped_rows: int = 0
    scored_candidates: int = 0


class VerifierLogitsProcessor:
    """Guides a decode loop with a token verifier (LLM2 System-2 decoding).

    ``beta = 0`` returns the logits untouched (no V_t truncation either), so decoding,
    greedy or sampled, is exactly System-1. Published settings: alpha 0.1, beta 0.25; the
    top_k cap of 10 is ours (it bounds the verifier's work per step).
    """

    def __init__(
        self, verifier: TokenVerifier, *, beta: float = 0.25, alpha: float = 0.1, top_k: int = 10
    ) -> None:
        self.verifier = verifier
        self.beta = beta
        self.alpha = alpha
        self.top_k = top_k
        self.cache = VerifierCache()
        self.stats = GuidanceStats()

    def reset(self) -> None:
        """Free the verifier cache (it is otherwise kept until the next decode call)."""
        self.cache.reset()

    def __call__(self, sequences: Sequence[Sequence[int]], logits: torch.Tensor) -> torch.Tensor:
        if self.beta == 0.0:
            return logits
        candidates = plausible_candidates(logits, self.alpha, self.top_k)
        single = candidates.single.tolist()
        counts = candidates.valid.sum(dim=-1).tolist()
        per_row = [
            [] if skip else ids[:count]
            for ids, count, skip in zip(candidates.ids.tolist(), counts, single, strict=True)
        ]
        self.cache.realign(sequences)
        scores = score_candidates(self.verifier, sequences, per_row, self.cache)
        padded = torch.zeros(candidates.ids.shape, dtype=torch.float32, device=logits.device)
        padded[:, : scores.shape[-1]] = scores.to(logits.device)
        skipped = sum(single)
        self.stats.verified_rows += len(single) - skipped
        self.stats.skipped_rows += skipped
        self.stats.scored_candidates += sum(len(c) for c in per_row)
        return guided_logits(logits, candidates.ids, padded, self.beta, candidates.valid)
