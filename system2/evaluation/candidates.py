"""Score every candidate of an answer, not only the chosen one: oracle@n, and the pick of
each reranker compared on the same candidates (``rerank`` with ``compare``).

What goes into an item record (only when the trace holds two or more candidates):

- ``candidates_correct``: one entry per candidate, ``None`` for a candidate with no answer;
- ``oracle``: some candidate is right (oracle@n);
- ``rerankers``: reranker kind -> whether its pick is right, the configured reranker and
  every ``compare`` one; ``random_expected``: the mean over the reranked candidates, i.e.
  the random reranker's expected pass rate, free of one draw's luck.

Identical answers are scored once, so ten copies of one program run once.
"""

from __future__ import annotations

from collections.abc import Callable
from statistics import fmean
from typing import Any

from orchestrator.types import Trace

from .datasets import EvalItem, ScoreOutcome, score_item

__all__ = ["candidate_fields"]

Scorer = Callable[[EvalItem, str | None], ScoreOutcome]


def candidate_fields(item: EvalItem, trace: Trace, scorer: Scorer = score_item) -> dict[str, Any]:
    """The per-candidate record fields for ``item`` (empty for fewer than two candidates)."""
    if len(trace.candidates) < 2:
        return {}
    verdicts: dict[str, bool] = {}
    correct: list[bool | None] = []
    for candidate in trace.candidates:
        if candidate.answer is None:
            correct.append(None)
            continue
        if candidate.answer not in verdicts:
            verdicts[candidate.answer] = scorer(item, candidate.answer).correct
        correct.append(verdicts[candidate.answer])
    fields: dict[str, Any] = {"candidates_correct": correct, "oracle": any(correct)}
    rerank = trace.extra.get("rerank")
    if rerank and rerank.get("kept"):
        kept: list[int] = rerank["kept"]
        fields["random_expected"] = fmean(bool(correct[i]) for i in kept)
        picks = {rerank["reranker"]: rerank["chosen"]}
        picks.update({kind: r["chosen"] for kind, r in rerank.get("compare", {}).items()})
        fields["rerankers"] = {kind: bool(correct[i]) for kind, i in picks.items()}
    return fields
