"""The Coder-Reviewer baseline: ``log P(c | I_0) + log P(I_0 | c)``, both directions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from orchestrator.rerank.base import Reranker, Reranking
from orchestrator.rerank.codersa import coder_reviewer_scores
from orchestrator.rerank.evidence import Evidence

__all__ = ["CoderReviewerReranker"]


@dataclass(frozen=True)
class CoderReviewerReranker(Reranker):
    """Coder-Reviewer: argmax ``log P(c | I_0) + log P(I_0 | c)``; 1 + n score calls."""

    kind: ClassVar[str] = "coder_reviewer"
    needs: ClassVar[tuple[str, ...]] = ("coder_column", "reviewer")

    def decide(self, evidence: Evidence, n: int) -> Reranking:
        assert evidence.coder_column is not None
        assert evidence.reviewer is not None
        choice = coder_reviewer_scores(evidence.coder_column, evidence.reviewer)
        details = {"logp_c_given_i0": evidence.coder_column, "logp_i0_given_c": evidence.reviewer}
        return Reranking(best=choice.best, scores=choice.score, details=details)
