"""System-2 guided decoding as a ``workers.decoding`` logits hook.

Each step, for the rows still decoding, ``workers.verifier.guidance.guide_rows``: V_t from
the generator's raw logits, the verifier's scores of V_t (one batched forward for all rows,
skipped for rows with |V_t| = 1), then z* = z + beta * s on V_t and -inf elsewhere.

Settings are per row: called with ``settings`` (the ``GuidanceProcessor`` form that
``decode_batch`` uses for rows asking for guidance) each row has its own beta, alpha and
top_k; called without, every row gets the processor's own (the ``LogitsProcessor`` form).
A row with beta = 0 is returned untouched and costs no verifier work.

Rows are tracked by content: ``decode_batch`` drops finished rows and passes each remaining
row's prompt + generated ids, so the processor's cache is realigned each step to the row
caching that sequence minus its newest token (``VerifierCache.realign``). No row ids are
needed, a new ``decode_batch`` call simply starts fresh rows, and the last call's cache is
held until the next call or ``reset()``. One processor serves one decode loop at a time.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from workers.base import Guidance
from workers.guidance_stats import GuidanceStats
from workers.verifier.guidance import VerifierScorer, guide_rows
from workers.verifier.network import TokenVerifier

__all__ = ["VerifierLogitsProcessor"]


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
        self.scorer = VerifierScorer(verifier)
        self.stats = GuidanceStats()

    def reset(self) -> None:
        """Free the verifier cache (it is otherwise kept until the next decode call)."""
        self.scorer.cache.reset()

    def __call__(
        self,
        sequences: Sequence[Sequence[int]],
        logits: torch.Tensor,
        settings: Sequence[Guidance] | None = None,
    ) -> torch.Tensor:
        if settings is None:
            if self.beta == 0.0:
                return logits
            settings = [Guidance(beta=self.beta, alpha=self.alpha, top_k=self.top_k)] * len(
                sequences
            )
        if len(settings) != len(sequences) or len(sequences) != logits.shape[0]:
            raise ValueError("sequences, logits and settings must have one entry per row")
        if not any(s.beta != 0.0 for s in settings):
            return logits
        return guide_rows(logits, sequences, settings, self.scorer, self.stats)
