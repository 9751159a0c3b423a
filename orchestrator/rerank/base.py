"""``Reranker``: the one interface every reranker has, and ``Reranking``, what it returns.

``await reranker.rerank(calls, model, task)`` gathers the evidence components the reranker
``needs`` (``evidence``) and hands them to its ``decide``: the chosen index, a score per
candidate, and what it computed (matrix, descriptions, log-probs) for the trace.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from orchestrator.recorder import CallRecorder
from orchestrator.rerank.evidence import Evidence, gather_evidence
from orchestrator.rerank.task import RerankTask

__all__ = ["Reranker", "Reranking"]


@dataclass(frozen=True)
class Reranking:
    """The chosen index, one score per candidate, and what was computed (for the trace)."""

    best: int
    scores: tuple[float, ...]
    details: Mapping[str, Any] = field(default_factory=dict)


class Reranker(abc.ABC):
    """Picks one candidate from the ``needs`` components of the evidence. ``rerank``
    refuses an empty set and makes no model call for one candidate (it is the pick)."""

    kind: ClassVar[str]
    needs: ClassVar[tuple[str, ...]]

    async def rerank(
        self, calls: CallRecorder, model: str, task: RerankTask, evidence: Evidence | None = None
    ) -> Reranking:
        """Rerank ``task``; pass one ``evidence`` to several rerankers to share their calls."""
        if not task.candidates:
            raise ValueError("nothing to rerank: no candidates")
        if len(task.candidates) == 1:
            return Reranking(best=0, scores=(0.0,), details={"skipped": "one candidate"})
        evidence = await gather_evidence(
            calls, model, task, self.needs, evidence=evidence, **self._gather_options()
        )
        return self.decide(evidence, len(task.candidates))

    def _gather_options(self) -> dict[str, Any]:
        return {}

    @abc.abstractmethod
    def decide(self, evidence: Evidence, n: int) -> Reranking:
        """The pick among ``n >= 2`` candidates from gathered ``evidence``."""
