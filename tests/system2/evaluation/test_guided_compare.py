"""``compare_guided`` over two verifiers with scripted workers (no model): run-file names,
the unguided modes run once, one worker open at a time, the paired tests' numbers against
hand-computed ones, and a rerun that resumes every mode."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from orchestrator.types import Query
from system2.evaluation.datasets import EvalItem
from system2.evaluation.guided import GuidedComparison, GuidedMode
from system2.evaluation.guided_run import OpenedWorker, compare_guided
from system2.evaluation.verifier_provenance import VerifierSpec
from workers.base import GenerateRequest, Prompt, StepScale, StepVerifier, Worker
from workers.scripted import ScriptedWorker

ITEMS = [
    EvalItem(id=f"q{i}", query=Query(id=f"q{i}", text=f"What is item {i}?"), gold=str(i + 4))
    for i in range(10)
]
LLM2 = VerifierSpec(Path("v/llm2"), "llm2", "rollouts", "llm2")
TRUNK = VerifierSpec(Path("v/trunk"), "trunk_head", "paths", "trunk_head")

# Which items each worker answers right: plain decoding (greedy, and SC's samples 1 and 2;
# SC's sample 0 is also right on q3 and q4), and guided decoding per verifier.
PLAIN = {0, 1, 2}
SAMPLE_0 = {0, 1, 2, 3, 4}
GUIDED = {"llm2": {0, 1, 3, 4, 5, 6, 7, 8, 9}, "trunk_head": set(range(10))}
WRONG = "99"


def _item_index(request: GenerateRequest) -> int:
    match = re.search(r"item (\d+)\?", str(request.prompt))
    assert match is not None, request.prompt
    return int(match.group(1))


class _ScriptedVotes:
    """A step verifier that scores a path ending in a wrong answer low (scripted)."""

    scale: StepScale = "probability"

    async def score_steps(self, prompt: Prompt, steps: Sequence[str]) -> list[float]:
        return [0.1 if WRONG in " ".join(steps) else 0.9] * len(steps)


class _Factory:
    """Builds a scripted worker per verifier (None: plain) and logs opens and closes."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.workers: dict[str, ScriptedWorker] = {}

    def __call__(self, spec: VerifierSpec | None) -> OpenedWorker:
        label = spec.label if spec else "plain"
        right = GUIDED[label] if spec else PLAIN

        def handler(request: GenerateRequest, index: int) -> str:
            i = _item_index(request)
            assert (request.params.guidance is not None) == (spec is not None)
            ok = i in (SAMPLE_0 if spec is None and index == 0 and request.params.n > 1 else right)
            return f"The answer is {i + 4 if ok else WRONG}."

        events = self.events

        class Logged(ScriptedWorker):
            async def close(self) -> None:
                events.append(f"close {label}")

        worker = Logged("m", handler, guidance=spec is not None)
        self.events.append(f"open {label}")
        self.workers[label] = worker
        return OpenedWorker(worker, {"worker": label})


def _compare(
    out: Path,
    factory: Callable[[VerifierSpec | None], OpenedWorker],
    modes: Sequence[GuidedMode],
    verifiers: Sequence[VerifierSpec] = (LLM2, TRUNK),
    step_verifier_of: Callable[[Worker], StepVerifier | None] = lambda worker: _ScriptedVotes(),
) -> list[str]:
    """The modes ``compare_guided`` reports, at k = 3 on ``ITEMS``."""
    results = asyncio.run(
        compare_guided(
            ITEMS,
            factory,
            out,
            verifiers=verifiers,
            settings=GuidedComparison(k=3),
            modes=modes,
            progress=False,
            step_verifier_of=step_verifier_of,
        )
    )
    return [r.mode for r in results]


def test_two_verifiers_share_the_unguided_runs(tmp_path: Path) -> None:
    """Greedy and SC run once on a plain worker; each verifier's worker runs only guided
    requests, opened after the previous one closed; every mode has its own run file."""
    factory = _Factory()
    modes = _compare(tmp_path, factory, ["greedy", "guided_greedy", "sc", "guided_sc"])
    assert factory.events == [
        "open plain", "close plain", "open llm2", "close llm2", "open trunk_head",
        "close trunk_head",
    ]  # fmt: skip
    plain = factory.workers["plain"].requests
    assert len(plain) == 2 * len(ITEMS)  # greedy + sc, once each
    for label in ("llm2", "trunk_head"):
        assert len(factory.workers[label].requests) == 2 * len(ITEMS)  # only guided
    assert modes == [
        "greedy", "sc", "guided_greedy@llm2", "guided_sc@llm2", "sc+verifier_vote@llm2",
        "guided_sc+verifier_vote@llm2", "guided_greedy@trunk_head", "guided_sc@trunk_head",
        "sc+verifier_vote@trunk_head", "guided_sc+verifier_vote@trunk_head",
    ]  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [
            "greedy.jsonl", "sc.jsonl", "summary.json",
            "guided_greedy@llm2.jsonl", "guided_sc@llm2.jsonl",
            "sc_verifier_vote@llm2.jsonl", "guided_sc_verifier_vote@llm2.jsonl",
            "guided_greedy@trunk_head.jsonl", "guided_sc@trunk_head.jsonl",
            "sc_verifier_vote@trunk_head.jsonl", "guided_sc_verifier_vote@trunk_head.jsonl",
        ]
    )  # fmt: skip
    header = json.loads((tmp_path / "guided_greedy@trunk_head.jsonl").read_text().split("\n")[0])
    assert header["verifier"] == TRUNK.describe()
    assert header["worker"] == "trunk_head"
    assert "verifier" not in json.loads((tmp_path / "greedy.jsonl").read_text().split("\n")[0])

    rerun = _Factory()
    assert _compare(tmp_path, rerun, ["greedy", "guided_greedy", "sc", "guided_sc"]) == modes
    assert all(not w.requests for w in rerun.workers.values())  # every mode resumed


def test_paired_tests_match_hand_computed_ones(tmp_path: Path) -> None:
    """Each guided mode against its unguided one, as counted by hand from the script."""
    _compare(tmp_path, _Factory(), ["greedy", "guided_greedy", "sc", "guided_sc"])
    rows = {r["mode"]: r for r in json.loads((tmp_path / "summary.json").read_text())}
    assert list(rows)[:3] == ["greedy", "guided_greedy@llm2", "guided_greedy@trunk_head"]
    assert rows["greedy"]["paired"] is None
    assert rows["greedy"]["accuracy"] == 0.3
    # Wilson 95% for 3/10: centre and half-width by hand (z = 1.959964).
    assert rows["greedy"]["interval"] == [
        pytest.approx(0.1078, abs=1e-4),
        pytest.approx(0.6032, abs=1e-4),
    ]
    # llm2: q3..q9 fixed, q2 broken: 2 * (C(8,0) + C(8,1)) / 2^8 = 18/256.
    llm2 = rows["guided_greedy@llm2"]["paired"]
    assert (llm2["baseline"], llm2["n"], llm2["fixed"], llm2["broken"]) == ("greedy", 10, 7, 1)
    assert llm2["fixed_ids"] == [f"q{i}" for i in range(3, 10)]
    assert llm2["broken_ids"] == ["q2"]
    assert llm2["p_value"] == 18 / 256
    assert llm2["verdict"] == "not significant"
    # trunk head: 7 fixed, none broken: 2 / 2^7.
    trunk = rows["guided_greedy@trunk_head"]["paired"]
    assert (trunk["fixed"], trunk["broken"], trunk["p_value"]) == (7, 0, 2 / 128)
    assert trunk["verdict"] == "significant"
    # SC: samples 1 and 2 outvote sample 0, so SC is right on q0..q2 only; the scripted
    # verifier's vote keeps the right sample 0 on q3 and q4: 2 fixed, p = 2 / 2^2.
    assert rows["sc"]["correct"] == 3
    revote = rows["sc+verifier_vote@llm2"]["paired"]
    assert (revote["baseline"], revote["fixed"], revote["broken"]) == ("sc", 2, 0)
    assert revote["p_value"] == 0.5
    guided_sc = rows["guided_sc@llm2"]["paired"]
    assert (guided_sc["baseline"], guided_sc["fixed"], guided_sc["broken"]) == ("sc", 7, 1)
    assert rows["guided_sc@llm2"]["verifier"]["source"] == "rollouts"
    assert rows["guided_sc@trunk_head"]["verifier"]["kind"] == "trunk_head"
    assert rows["sc"]["verifier_seconds"] is None  # no verifier attached


def test_guided_modes_without_a_verifier_are_refused(tmp_path: Path) -> None:
    """Nothing is opened when the guided modes have no verifier to run with."""
    factory = _Factory()
    with pytest.raises(ValueError, match="guided_greedy need at least one verifier"):
        asyncio.run(compare_guided(ITEMS, factory, tmp_path, verifiers=[], modes=["guided_greedy"]))
    assert factory.events == []


def test_only_revotes_still_open_each_verifier(tmp_path: Path) -> None:
    """SC alone, re-voted: each verifier's worker is opened for its vote and runs nothing."""
    factory = _Factory()
    modes = _compare(tmp_path, factory, ["sc"])
    assert modes == ["sc", "sc+verifier_vote@llm2", "sc+verifier_vote@trunk_head"]
    assert factory.events[-2:] == ["open trunk_head", "close trunk_head"]
    assert not factory.workers["llm2"].requests
    assert not factory.workers["trunk_head"].requests


def test_a_scoring_copy_scores_the_revotes_when_the_worker_cannot(tmp_path: Path) -> None:
    """A worker without step scores (as a vLLM engine) opened with a ``scorer``: the worker
    is closed once its guided modes are done, the re-votes score with the scorer, and the
    scorer is closed after them."""
    factory = _Factory()
    scorers: list[ScriptedWorker] = []

    def with_scorer(spec: VerifierSpec | None) -> OpenedWorker:
        opened = factory(spec)
        if spec is None:
            return opened
        scorers.append(ScriptedWorker("scorer", lambda request, index: "unused"))
        return OpenedWorker(opened.worker, opened.described, scorer=scorers[-1])

    closed: list[Worker] = []

    async def record_close(self: ScriptedWorker) -> None:
        closed.append(self)

    def scores_only_on_scorers(worker: Worker) -> StepVerifier | None:
        if worker in scorers:  # the generator is closed before its scorer scores
            assert factory.events[-1] == "close trunk_head"
            return _ScriptedVotes()
        return None

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ScriptedWorker, "close", record_close)
        modes = _compare(
            tmp_path, with_scorer, ["sc", "guided_sc"], [TRUNK], scores_only_on_scorers
        )
    assert modes == [
        "sc", "guided_sc@trunk_head", "sc+verifier_vote@trunk_head",
        "guided_sc+verifier_vote@trunk_head",
    ]  # fmt: skip
    assert len(scorers) == 1
    assert scorers[0] in closed


def test_a_guided_mode_run_alone_is_tested_against_the_earlier_baseline(tmp_path: Path) -> None:
    """Greedy in one call, the guided greedy modes in a later one (``--modes
    guided_greedy``): the later call reads greedy back from its run file for the paired
    tests, and the summary keeps greedy's row with the timings of the call that ran it."""
    _compare(tmp_path, _Factory(), ["greedy"])
    first = json.loads((tmp_path / "summary.json").read_text())
    assert [r["mode"] for r in first] == ["greedy"]
    assert first[0]["wall_seconds"] is not None

    later = _Factory()
    _compare(tmp_path, later, ["guided_greedy"])
    assert "plain" not in later.workers  # greedy was not run again
    rows = {r["mode"]: r for r in json.loads((tmp_path / "summary.json").read_text())}
    assert list(rows) == ["greedy", "guided_greedy@llm2", "guided_greedy@trunk_head"]
    assert rows["greedy"]["wall_seconds"] == first[0]["wall_seconds"]
    paired = rows["guided_greedy@trunk_head"]["paired"]
    assert paired["baseline"] == "greedy"
    assert (paired["fixed"], paired["broken"]) == (7, 0)  # right on all 10, greedy on 3


def test_guided_sc_alone_re_votes_the_earlier_sc_run(tmp_path: Path) -> None:
    """SC in one call, guided SC in a later one: SC's candidates are re-voted from its run
    file (no plain worker is opened) beside guided SC's, and guided SC is tested against it."""
    _compare(tmp_path, _Factory(), ["sc"])
    later = _Factory()
    modes = _compare(tmp_path, later, ["guided_sc"])
    assert "plain" not in later.workers
    assert modes == [
        "sc", "guided_sc@llm2", "sc+verifier_vote@llm2", "guided_sc+verifier_vote@llm2",
        "guided_sc@trunk_head", "sc+verifier_vote@trunk_head",
        "guided_sc+verifier_vote@trunk_head",
    ]  # fmt: skip
    rows = {r["mode"]: r for r in json.loads((tmp_path / "summary.json").read_text())}
    assert rows["guided_sc@trunk_head"]["paired"]["baseline"] == "sc"
    assert rows["sc+verifier_vote@llm2"]["paired"]["n"] == len(ITEMS)


def test_a_call_stopped_after_a_mode_keeps_that_modes_row(tmp_path: Path) -> None:
    """The summary is written after every mode: when the verifier's worker fails to open
    after SC ran, SC's row and wall time are already in summary.json."""
    factory = _Factory()

    def plain_only(spec: VerifierSpec | None) -> OpenedWorker:
        if spec is not None:
            raise RuntimeError("the engine would not start")
        return factory(spec)

    with pytest.raises(RuntimeError, match="would not start"):
        _compare(tmp_path, plain_only, ["sc", "guided_sc"], [TRUNK])
    rows = json.loads((tmp_path / "summary.json").read_text())
    assert [r["mode"] for r in rows] == ["sc"]
    assert rows[0]["correct"] == 3
    assert rows[0]["wall_seconds"] is not None
