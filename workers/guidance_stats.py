"""``GuidanceStats``: what a worker's token verifier has done so far while guiding decoding.

Kept by the guidance step (``workers.verifier.guidance.guide_rows``), and read through the
seam as ``Worker.guidance_stats``; plain counters, no torch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["GuidanceStats"]


@dataclass(slots=True)
class GuidanceStats:
    """Running counts: row-steps guided, row-steps skipped (|V_t| = 1), candidates scored,
    and the wall seconds spent guiding (candidate sets, verifier, rewrite)."""

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

    def count_rows(self, *, scored: int, skipped: int, candidates: int) -> None:
        """``count_step`` from counts: ``scored`` rows with ``candidates`` in all, ``skipped``."""
        self.verified_rows += scored
        self.skipped_rows += skipped
        self.scored_candidates += candidates

    @classmethod
    def total(cls, parts: Iterable[GuidanceStats]) -> GuidanceStats:
        """Every counter summed over ``parts`` (e.g. the replicas of a pool)."""
        summed = cls()
        for part in parts:
            for f in dataclasses.fields(cls):
                setattr(summed, f.name, getattr(summed, f.name) + getattr(part, f.name))
        return summed
