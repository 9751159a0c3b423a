"""The random baseline: a uniformly random candidate, no model call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from orchestrator.rerank.base import Reranker, Reranking
from orchestrator.rerank.codersa import random_choice
from orchestrator.rerank.evidence import Evidence

__all__ = ["RandomReranker"]


@dataclass(frozen=True)
class RandomReranker(Reranker):
    """A uniformly random candidate (no model call); ``seed`` makes it repeatable."""

    kind: ClassVar[str] = "random"
    needs: ClassVar[tuple[str, ...]] = ()
    seed: int | None = None

    def decide(self, evidence: Evidence, n: int) -> Reranking:
        best = random_choice(n, self.seed)
        scores = tuple(1.0 if i == best else 0.0 for i in range(n))
        return Reranking(best=best, scores=scores, details={"seed": self.seed})
