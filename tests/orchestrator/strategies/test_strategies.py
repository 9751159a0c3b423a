"""Strategies and the Orchestrator on scripted workers: votes, early stop, usage, failures."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import structlog

from orchestrator import (
    EarlyStopConfig,
    GreedyConfig,
    Orchestrator,
    Query,
    SampleConfig,
    SelfConsistencyConfig,
)
from policies import FixedPolicy
from workers.base import GenerateRequest, GenerateResult, ScoreRequest, ScoreResult, Worker
from workers.errors import WorkerFailure
from workers.scripted import ScriptedWorker, cycle_texts


def _orch(texts: Sequence[str], strategy: object, *, models: int = 1) -> Orchestrator:
    names = tuple(f"m{i}" for i in range(models))
    workers: dict[str, Worker] = {n: ScriptedWorker(n, cycle_texts(texts)) for n in names}
    return Orchestrator(workers, FixedPolicy(names, strategy))  # type: ignore[arg-type]


async def test_greedy_returns_the_extracted_answer() -> None:
    """Greedy asks for one temperature-0 completion and extracts its answer."""
    orch = _orch(["3 + 4 = 7. The answer is 7."], GreedyConfig(max_tokens=64))
    answer = await orch.answer(Query(text="3+4?"))
    assert answer.answer == "7"
    assert answer.status == "ok"
    (request,) = orch.workers["m0"].requests  # type: ignore[attr-defined]
    assert request.params.temperature == 0.0
    assert request.params.max_tokens == 64


async def test_sample_passes_sampling_settings() -> None:
    """The sample strategy forwards temperature, top-p and seed to the worker."""
    orch = _orch(["The answer is 2."], SampleConfig(temperature=0.9, top_p=0.8, seed=5))
    await orch.answer("1+1?")
    (request,) = orch.workers["m0"].requests  # type: ignore[attr-defined]
    assert (request.params.temperature, request.params.top_p, request.params.seed) == (0.9, 0.8, 5)


async def test_self_consistency_majority_and_usage() -> None:
    """SC returns the most frequent answer, its margin, and charges every sample's tokens."""
    texts = ["The answer is 12.", "I think 13. The answer is 13.", "The answer is 12."]
    answer = await _orch(texts, SelfConsistencyConfig(n=3)).answer("q")
    assert answer.answer == "12"
    assert answer.trace.vote is not None
    assert answer.trace.vote.counts == {"12": 2.0, "13": 1.0}
    assert answer.trace.vote.margin == pytest.approx(1 / 3)
    assert len(answer.trace.candidates) == 3
    tokens = sum(len(t.split()) for t in texts)
    assert answer.usage.completion_tokens == tokens
    assert answer.usage.per_model["m0"].calls == 1


async def test_self_consistency_stops_early_when_unanimous() -> None:
    """With early stop, a unanimous first round ends sampling before n samples."""
    config = SelfConsistencyConfig(
        n=10, early_stop=EarlyStopConfig(round_size=3, min_samples=3, min_margin=1.0)
    )
    answer = await _orch(["The answer is 5."], config).answer("q")
    assert answer.trace.vote is not None
    assert answer.trace.vote.stopped_early
    assert len(answer.trace.candidates) == 3
    assert answer.trace.extra["early_stop"] == "margin"


async def test_self_consistency_continues_when_split() -> None:
    """A split vote keeps sampling until n samples have been drawn."""
    config = SelfConsistencyConfig(
        n=6, early_stop=EarlyStopConfig(round_size=2, min_samples=2, min_margin=0.9)
    )
    answer = await _orch(["The answer is 1.", "The answer is 2."], config).answer("q")
    assert len(answer.trace.candidates) == 6
    assert answer.trace.vote is not None
    assert not answer.trace.vote.stopped_early


async def test_seeded_rounds_use_consecutive_seeds() -> None:
    """Rounds continue the seed sequence so early stop draws the same samples as one call."""
    config = SelfConsistencyConfig(
        n=4, seed=10, early_stop=EarlyStopConfig(round_size=2, min_samples=4, min_margin=1.0)
    )
    orch = _orch(["The answer is 1.", "The answer is 2."], config)
    await orch.answer("q")
    seeds = [r.params.seed for r in orch.workers["m0"].requests]  # type: ignore[attr-defined]
    assert seeds == [10, 12]


async def test_no_parsable_answer_is_recorded() -> None:
    """When no candidate has an answer the status says so and the trace says why."""
    answer = await _orch(["I do not know."], SelfConsistencyConfig(n=2)).answer("q")
    assert answer.answer is None
    assert answer.status == "no_answer"
    assert any("no candidate had a parsable answer" in f for f in answer.trace.failures)
    assert all(c.extraction_error for c in answer.trace.candidates)


class _FailsOnSecondCall(Worker):
    """A worker that answers once, then fails, to check nothing computed is lost."""

    def __init__(self) -> None:
        self.model_name = "flaky"
        self.inner = ScriptedWorker("flaky", cycle_texts(["The answer is 3."]))
        self.calls = 0

    async def generate(self, request: GenerateRequest) -> GenerateResult:
        self.calls += 1
        if self.calls > 1:
            raise WorkerFailure("flaky", "connection reset")
        return await self.inner.generate(request)

    async def score(self, request: ScoreRequest) -> ScoreResult:
        raise NotImplementedError


async def test_worker_failure_is_recorded_and_keeps_earlier_candidates() -> None:
    """A worker dying mid-query gives status 'failed', the reason, and the samples so far."""
    config = SelfConsistencyConfig(
        n=4, early_stop=EarlyStopConfig(round_size=2, min_samples=4, min_margin=1.0)
    )
    orch = Orchestrator({"flaky": _FailsOnSecondCall()}, FixedPolicy(("flaky",), config))
    answer = await orch.answer("q")
    assert answer.status == "failed"
    assert answer.answer is None
    assert answer.trace.failures == ["generate on flaky: connection reset"]
    assert len(answer.trace.candidates) == 2
    assert answer.trace.generations[-1].error == "connection reset"


async def test_self_consistency_over_two_models_pools_votes() -> None:
    """With two planned models, each contributes n samples to one vote."""
    answer = await _orch(["The answer is 8."], SelfConsistencyConfig(n=2), models=2).answer("q")
    assert answer.trace.vote is not None
    assert answer.trace.vote.counts == {"8": 4.0}
    assert set(answer.usage.per_model) == {"m0", "m1"}


async def test_logs_carry_the_query_id() -> None:
    """Every log event of a query is bound to its id."""
    orch = _orch(["The answer is 1."], GreedyConfig())
    with structlog.testing.capture_logs(
        processors=[structlog.contextvars.merge_contextvars]
    ) as events:
        answer = await orch.answer(Query(text="q", id="query-123"))
    assert answer.query.id == "query-123"
    assert {e["event"] for e in events} >= {"planned", "answered"}
    assert all(e.get("query_id") == "query-123" for e in events)


def test_policy_model_without_worker_is_refused() -> None:
    """Building an orchestrator whose policy names a model with no worker fails clearly."""
    with pytest.raises(ValueError, match="m9"):
        Orchestrator(
            {"m0": ScriptedWorker("m0", cycle_texts(["x"]))}, FixedPolicy(("m9",), GreedyConfig())
        )


class _WeightedPolicy(FixedPolicy):
    """A fixed plan that carries per-model vote weights, like WEIGHTEDMAXCONF's."""

    def __init__(self, models: tuple[str, ...], weights: dict[str, float]) -> None:
        super().__init__(models, SelfConsistencyConfig(n=2))
        self._plan = self._plan.model_copy(update={"vote_weights": weights})


async def test_weighted_vote_follows_model_weights() -> None:
    """A confident model's answer beats a more numerous but less confident majority."""
    workers: dict[str, Worker] = {
        "strong": ScriptedWorker("strong", cycle_texts(["The answer is 10."])),
        "weak1": ScriptedWorker("weak1", cycle_texts(["The answer is 11."])),
        "weak2": ScriptedWorker("weak2", cycle_texts(["The answer is 11."])),
    }
    weights = {"strong": 0.9, "weak1": 0.2, "weak2": 0.2}
    orch = Orchestrator(workers, _WeightedPolicy(("strong", "weak1", "weak2"), weights))
    answer = await orch.answer("q")
    assert answer.answer == "10"
    assert answer.trace.vote is not None
    assert answer.trace.vote.counts == pytest.approx({"10": 1.8, "11": 0.8})


async def test_weighted_tie_goes_to_first_planned_model() -> None:
    """Answers with equal weight go to the model the plan lists first."""
    workers: dict[str, Worker] = {
        "fast": ScriptedWorker("fast", cycle_texts(["The answer is 1."])),
        "slow": ScriptedWorker("slow", cycle_texts(["The answer is 2."])),
    }
    orch = Orchestrator(workers, _WeightedPolicy(("slow", "fast"), {"fast": 0.5, "slow": 0.5}))
    assert (await orch.answer("q")).answer == "2"
