"""Per-candidate scoring: oracle@n, each compared reranker's pick, random's expectation."""

from __future__ import annotations

import pytest

from orchestrator import Query
from orchestrator.types import Candidate, Trace
from system2.evaluation import EvalItem, ScoreOutcome, summarize
from system2.evaluation.candidates import candidate_fields

ITEM = EvalItem(id="q", query=Query(text="2+2?", id="q"), gold="4")


def _candidate(answer: str | None) -> Candidate:
    return Candidate(
        model="m", text=str(answer), answer=answer, completion_tokens=1,
        total_logprob=0.0, finish_reason="stop",
    )  # fmt: skip


def _trace(answers: list[str | None], rerank: dict[str, object] | None = None) -> Trace:
    extra = {"rerank": rerank} if rerank else {}
    return Trace(query_id="q", candidates=[_candidate(a) for a in answers], extra=extra)


def test_each_distinct_answer_is_scored_once() -> None:
    """Three copies of one answer cost one scorer call; no-answer candidates are None."""
    seen: list[str | None] = []

    def scorer(item: EvalItem, predicted: str | None) -> ScoreOutcome:
        seen.append(predicted)
        return ScoreOutcome(correct=predicted == item.gold, detail="")

    fields = candidate_fields(ITEM, _trace(["5", "4", "5", None, "5"]), scorer)
    assert fields == {"candidates_correct": [False, True, False, None, False], "oracle": True}
    assert seen == ["5", "4"]


def test_reranker_picks_are_judged_on_the_same_candidates() -> None:
    """The configured reranker and each compared one are judged by their chosen index;
    random's expectation averages the reranked (kept) candidates only."""
    rerank = {
        "reranker": "rsa", "kept": [0, 1, 2], "chosen": 1,
        "compare": {"coder": {"chosen": 0}, "coder_reviewer": {"chosen": 1}},
    }  # fmt: skip
    fields = candidate_fields(ITEM, _trace(["5", "4", "6", None], rerank))
    assert fields["rerankers"] == {"rsa": True, "coder": False, "coder_reviewer": True}
    assert fields["random_expected"] == pytest.approx(1 / 3)
    assert fields["oracle"] is True


def test_one_candidate_adds_nothing() -> None:
    assert candidate_fields(ITEM, _trace(["4"])) == {}


def test_summary_rates_count_every_item() -> None:
    """Pass rates divide by all items, so an item without reranking counts as a miss."""
    base = {"correct": False, "completion_tokens": 0, "seconds": 0.0, "status": "ok"}
    records = [
        {**base, "oracle": True, "random_expected": 0.5, "rerankers": {"rsa": True}},
        {**base, "oracle": False, "random_expected": 0.0, "rerankers": {"coder": False}},
        {**base, "status": "failed"},
    ]
    summary = summarize(records)
    assert summary.oracle == pytest.approx(1 / 3)
    assert summary.rerankers == pytest.approx(
        {"random (expected)": 0.5 / 3, "rsa": 1 / 3, "coder": 0.0}
    )
