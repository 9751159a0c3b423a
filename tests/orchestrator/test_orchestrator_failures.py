"""Whatever goes wrong inside a query becomes a failed ``Answer`` that says why and keeps
what was computed; nothing escapes to the caller."""

from __future__ import annotations

import pytest

from orchestrator import GreedyConfig, Orchestrator, Plan, Query, RoutingPolicy
from orchestrator.strategies import STRATEGIES, StrategyContext, StrategyResult
from policies import FixedPolicy
from workers.base import GenerateRequest, SamplingParams
from workers.scripted import ScriptedWorker, cycle_texts


def _orchestrator(handler_text: str = "2 + 2 = 4. The answer is 4.") -> Orchestrator:
    worker = ScriptedWorker("m", cycle_texts([handler_text]))
    return Orchestrator({"m": worker}, FixedPolicy(("m",), GreedyConfig()))


def test_a_worker_raising_any_exception_fails_the_query_once() -> None:
    """A non-WorkerFailure error in a worker call is a failed answer, recorded once."""

    def broken(request: GenerateRequest, index: int) -> str:
        raise RuntimeError("garbage from the backend")

    orch = Orchestrator({"m": ScriptedWorker("m", broken)}, FixedPolicy(("m",), GreedyConfig()))
    answer = orch.answer_sync("What is 2 + 2?")
    assert answer.status == "failed"
    assert answer.trace.failures == ["generate on m: RuntimeError: garbage from the backend"]


def test_a_strategy_error_keeps_the_candidates_made_before_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An exception raised by strategy code (not a worker) is recorded with the strategy
    named, and the candidates generated before it stay in the trace."""

    async def half_done(ctx: StrategyContext, config: object) -> StrategyResult:
        request = GenerateRequest(prompt=ctx.prompt, params=SamplingParams(n=2))
        ctx.candidates(await ctx.calls.generate("m", request))
        raise ValueError("cannot rerank these")

    monkeypatch.setitem(STRATEGIES, "greedy", half_done)
    answer = _orchestrator().answer_sync("What is 2 + 2?")
    assert answer.status == "failed"
    assert answer.trace.failures == ["strategy greedy: ValueError: cannot rerank these"]
    assert [c.answer for c in answer.trace.candidates] == ["4", "4"]
    assert answer.usage.completion_tokens > 0


def test_a_policy_that_cannot_plan_fails_the_query() -> None:
    """A policy raising while planning gives a failed answer naming the planning step."""

    class Broken(RoutingPolicy):
        def plan(self, query: Query) -> Plan:
            raise OSError("router file vanished")

        def models(self) -> frozenset[str]:
            return frozenset({"m"})

    orch = Orchestrator({"m": ScriptedWorker("m", cycle_texts(["4"]))}, Broken())
    answer = orch.answer_sync("What is 2 + 2?")
    assert answer.status == "failed"
    assert answer.trace.failures == ["planning: OSError: router file vanished"]
