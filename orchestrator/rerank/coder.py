"""The Coder baseline: the candidate most likely given the instruction, ``log P(c | I_0)``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from orchestrator.rerank.base import Reranker, Reranking
from orchestrator.rerank.codersa import coder_scores
from orchestrator.rerank.evidence import Evidence

__all__ = ["CoderReranker"]


@dataclass(frozen=True)
class CoderReranker(Reranker):
    """Coder: argmax ``log P(c | I_0)``; one score call."""

    kind: ClassVar[str] = "coder"
    needs: ClassVar[tuple[str, ...]] = ("coder_column",)

    def decide(self, evidence: Evidence, n: int) -> Reranking:
        assert evidence.coder_column is not None
        choice = coder_scores(evidence.coder_column)
        details = {"logp_c_given_i0": evidence.coder_column}
        return Reranking(best=choice.best, scores=choice.score, details=details)
