"""``revote_with_verifier`` as a resumable run, on a scripted SC run file (no model): a
call stopped part-way keeps the items it scored and the next call scores only the rest;
a verifier that fails on one item records that item as failed, naming the error."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from orchestrator.types import Query
from system2.evaluation.datasets import EvalItem
from system2.evaluation.guided import GuidedComparison, ModeResult, run_mode
from system2.evaluation.revote import revote_with_verifier
from system2.evaluation.runner import read_records
from workers.base import GenerateRequest, Prompt, StepScale
from workers.scripted import ScriptedWorker

ITEMS = [
    EvalItem(id=f"q{i}", query=Query(id=f"q{i}", text=f"What is item {i}?"), gold=str(i))
    for i in range(6)
]


class _Stop(BaseException):
    """Stands for Ctrl-C in the middle of a re-vote."""


class _ScriptedScores:
    """A step verifier (scripted): a path ending in the wrong answer 99 scores low; it
    logs which items it scored and raises ``fail_on`` for the item named there."""

    scale: StepScale = "probability"

    def __init__(self, fail_on: dict[int, BaseException] | None = None) -> None:
        self.scored: set[int] = set()
        self.fail_on = fail_on or {}

    async def score_steps(self, prompt: Prompt, steps: Sequence[str]) -> list[float]:
        match = re.search(r"item (\d+)\?", str(prompt))
        assert match is not None
        item = int(match.group(1))
        if item in self.fail_on:
            raise self.fail_on[item]
        self.scored.add(item)
        return [0.1 if "99" in " ".join(steps) else 0.9] * len(steps)


def _sc_run(out: Path) -> ModeResult:
    """SC@3 where the majority is wrong (99) on every item and one sample is right."""

    def handler(request: GenerateRequest, index: int) -> str:
        match = re.search(r"item (\d+)\?", str(request.prompt))
        assert match is not None
        return f"The answer is {match.group(1) if index == 0 else 99}."

    worker = ScriptedWorker("m", handler)
    settings = GuidedComparison(k=3)
    return asyncio.run(run_mode("sc", ITEMS, worker, out, settings=settings, progress=False))


def _revote(source: ModeResult, verifier: _ScriptedScores) -> ModeResult:
    return asyncio.run(revote_with_verifier(source, ITEMS, verifier, progress=False))


def test_a_stopped_revote_resumes_with_the_items_it_scored(tmp_path: Path) -> None:
    sc = _sc_run(tmp_path)
    assert sc.summary.correct == 0

    first = _ScriptedScores(fail_on={3: _Stop()})
    with pytest.raises(_Stop):
        _revote(sc, first)
    assert first.scored == {0, 1, 2}
    path = tmp_path / "sc_verifier_vote.jsonl"
    assert set(read_records(path)[1]) == {"q0", "q1", "q2"}

    second = _ScriptedScores()
    result = _revote(sc, second)
    assert second.scored == {3, 4, 5}  # the first call's items were not scored again
    assert result.summary.n == len(ITEMS)
    assert result.summary.correct == len(ITEMS)  # the verifier outvotes the majority
    assert result.correct == {item.id: True for item in ITEMS}
    # The verifier's time counts both calls' items, each record keeping its own.
    records = read_records(path)[1].values()
    assert result.verifier_seconds == pytest.approx(
        sum(r["verifier_vote"]["seconds"] for r in records)
    )


def test_a_verifier_error_is_recorded_on_its_item(tmp_path: Path) -> None:
    sc = _sc_run(tmp_path)
    result = _revote(sc, _ScriptedScores(fail_on={4: RuntimeError("scorer went away")}))
    records = read_records(result.path)[1]
    assert records["q4"]["status"] == "failed"
    assert "scorer went away" in records["q4"]["detail"]
    assert result.summary.failures == 1
    assert result.summary.correct == len(ITEMS) - 1
