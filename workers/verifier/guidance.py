"""One step of LLM2 verifier guidance over a batch of rows, for any decode loop.

``guide_rows`` is the step both the transformers processor (``VerifierLogitsProcessor``)
and the vLLM engine adapters (``workers.vllm.processors``) run: V_t from each row's raw
logits (``plausible_candidates``), the scorer's s(x_<t, v) for v in V_t (one call for every
guided row), then z* = z + beta * s on V_t and -inf elsewhere (``guided_logits``). Scoring
is behind ``CandidateScorer`` so the engine can plug in any scorer; ``VerifierScorer`` is the
one over a ``TokenVerifier``. Nothing here imports vLLM.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Protocol

import torch

from workers.guidance_stats import GuidanceStats
from workers.verifier.candidates import VerifierCache, score_candidates
from workers.verifier.network import TokenVerifier
from workers.verifier.scoring import CandidateSet, guided_logits, plausible_candidates

__all__ = ["CandidateScorer", "RowGuidance", "VerifierScorer", "guide_rows"]


class RowGuidance(Protocol):
    """One row's guidance settings (``workers.base.Guidance`` or the engine's own form)."""

    @property
    def beta(self) -> float: ...
    @property
    def alpha(self) -> float: ...
    @property
    def top_k(self) -> int: ...


class CandidateScorer(Protocol):
    """Scores each row's candidate next tokens: ``[rows, max k]`` float32, 0 in padding.

    ``sequences[i]`` is row i's prompt and generated ids so far; ``candidates[i]`` its
    candidates (empty: nothing to score, but a stateful scorer may still update its cache).
    """

    def __call__(
        self, sequences: Sequence[Sequence[int]], candidates: Sequence[Sequence[int]]
    ) -> torch.Tensor: ...


class VerifierScorer:
    """A ``CandidateScorer`` over a ``TokenVerifier``, reusing its KV cache across steps
    (rows are matched by content each call, so finished or new rows need no ids)."""

    def __init__(self, verifier: TokenVerifier) -> None:
        self.verifier = verifier
        self.cache = VerifierCache()

    def __call__(
        self, sequences: Sequence[Sequence[int]], candidates: Sequence[Sequence[int]]
    ) -> torch.Tensor:
        with torch.no_grad():
            self.cache.realign(sequences)
            return score_candidates(self.verifier, sequences, candidates, self.cache)


def guide_rows(
    logits: torch.Tensor,
    sequences: Sequence[Sequence[int]],
    settings: Sequence[RowGuidance],
    scorer: CandidateScorer,
    stats: GuidanceStats | None = None,
) -> torch.Tensor:
    """Guided logits for ``[rows, vocab]`` raw ``logits`` (a new tensor; input untouched).

    Rows with beta = 0 come back unchanged and are not shown to the scorer. Rows are grouped
    by their settings so each group takes one ``plausible_candidates`` call; the scorer sees
    every guided row at once. ``stats``, if given, counts the guided rows (skipped:
    |V_t| = 1), scored candidates and the seconds spent here.
    """
    if not len(sequences) == len(settings) == logits.shape[0]:
        raise ValueError("logits, sequences and settings must have one entry per row")
    started = time.perf_counter()
    groups: dict[tuple[float, float, int], list[int]] = {}
    for i, s in enumerate(settings):
        if s.beta > 0.0:
            groups.setdefault((s.beta, s.alpha, s.top_k), []).append(i)
    if not groups:
        return logits.clone()
    found: dict[tuple[float, float, int], CandidateSet] = {}
    per_row: dict[int, list[int]] = {}
    for key, members in groups.items():
        found[key] = candidates = plausible_candidates(logits[members], key[1], key[2])
        for j, i in enumerate(members):
            per_row[i] = [] if bool(candidates.single[j]) else candidates.row(j)
    guided = sorted(per_row)
    if stats is not None:
        stats.count_step([per_row[i] for i in guided])
    scores = scorer([sequences[i] for i in guided], [per_row[i] for i in guided])
    scores = scores.to(device=logits.device, dtype=torch.float32)
    slot = {i: j for j, i in enumerate(guided)}
    out = logits.clone()
    for key, members in groups.items():
        candidates = found[key]
        padded = torch.zeros(candidates.ids.shape, dtype=torch.float32, device=logits.device)
        width = min(padded.shape[-1], scores.shape[-1])
        padded[:, :width] = scores[[slot[i] for i in members]][:, :width]
        out[members] = guided_logits(
            logits[members], candidates.ids, padded, key[0], candidates.valid
        )
    if stats is not None:
        stats.seconds += time.perf_counter() - started
    return out
