"""System-2 guided decoding as a ``workers.decoding`` logits hook.

Each step, for the rows still decoding: V_t from the generator's raw logits
(``plausible_candidates``), the verifier's scores of V_t (one batched forward for all rows,
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

import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from workers.base import Guidance
from workers.verifier.candidates import VerifierCache, score_candidates
from workers.verifier.network import TokenVerifier
from workers.verifier.scoring import CandidateSet, guided_logits, plausible_candidates

__all__ = ["GuidanceStats", "VerifierLogitsProcessor"]


@dataclass(slots=True)
class GuidanceStats:
    """Running counts: row-steps guided, row-steps skipped (|V_t| = 1), candidates scored,
    and the wall seconds spent in the processor (candidate sets, verifier, rewrite)."""

    verified_rows: int = 0
    skipped_rows: int = 0
    scored_candidates: int = 0
    seconds: float = 0.0

    def count_step(self, candidates: Sequence[Sequence[int]]) -> None:
        """Count one step of guided rows, given each row's candidates (empty: skipped)."""
        skipped = sum(1 for c in candidates if not c)
        self.verified_rows += len(candidates) - skipped
        self.skipped_rows += skipped
        self.scored_candidates += sum(len(c) for c in candidates)


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
        rows = [i for i, s in enumerate(settings) if s.beta != 0.0]
        if not rows:
            return logits
        started = time.perf_counter()
        groups: dict[tuple[float, float, int], list[int]] = {}
        for i in rows:
            key = (settings[i].beta, settings[i].alpha, settings[i].top_k)
            groups.setdefault(key, []).append(i)
        candidate_sets: dict[tuple[float, float, int], CandidateSet] = {}
        per_row: dict[int, list[int]] = {}
        for key, members in groups.items():
            found = plausible_candidates(logits[members], key[1], key[2])
            candidate_sets[key] = found
            for j, i in enumerate(members):
                per_row[i] = [] if bool(found.single[j]) else found.row(j)
        self.cache.realign([sequences[i] for i in rows])
        scores = score_candidates(
            self.verifier, [sequences[i] for i in rows], [per_row[i] for i in rows], self.cache
        ).to(logits.device)
        slot = {i: j for j, i in enumerate(rows)}
        out = logits.clone()
        for key, members in groups.items():
            found = candidate_sets[key]
            padded = torch.zeros(found.ids.shape, dtype=torch.float32, device=logits.device)
            width = min(padded.shape[-1], scores.shape[-1])
            member_scores = scores[[slot[i] for i in members]]
            padded[:, :width] = member_scores[:, :width]
            out[members] = guided_logits(logits[members], found.ids, padded, key[0], found.valid)
        self.stats.count_step([per_row[i] for i in rows])
        self.stats.seconds += time.perf_counter() - started
        return out
