"""Per-query budgets, the deadline, cancellation and the event stream of ``Orchestrator``."""

from __future__ import annotations

import asyncio
import time

import pytest

from orchestrator.budget import BudgetExhausted, QueryBudget, best_so_far, stopped_by
from orchestrator.events import (
    AnswerDecided,
    CallFinished,
    CallStarted,
    CandidatesMade,
    Planned,
    QueryEvent,
    TokenDelta,
)
from orchestrator.orchestrator import Orchestrator
from orchestrator.recorder import CallRecorder
from orchestrator.strategies import STRATEGIES, StrategyContext, StrategyResult
from orchestrator.strategies.config import (
    EarlyStopConfig,
    GreedyConfig,
    SelfConsistencyConfig,
    StrategyConfig,
)
from orchestrator.types import Answer, Candidate, Query, Trace, Usage
from policies import AllModelsPolicy, FixedPolicy
from workers.base import GenerateRequest, GenerateResult, SamplingParams
from workers.scripted import ScriptedWorker, cycle_texts

# Rounds of one sample; with TEXTS alternating, no early-stop rule ever fires.
ROUNDS = SelfConsistencyConfig(
    n=10, early_stop=EarlyStopConfig(round_size=1, min_samples=10, min_margin=1.0)
)
TEXTS = ["The answer is 4.", "The answer is 5."]  # alternating: never decisive early


class SlowWorker(ScriptedWorker):
    """A scripted worker whose calls take ``delay_s`` of real (awaited) time and which
    counts the calls cancelled while in flight."""

    def __init__(self, name: str, texts: list[str], delay_s: float) -> None:
        super().__init__(name, cycle_texts(texts))
        self.delay_s = delay_s
        self.cancelled = 0

    async def generate(self, request: GenerateRequest) -> GenerateResult:
        try:
            await asyncio.sleep(self.delay_s)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return await super().generate(request)


def _orch(worker: ScriptedWorker, strategy: StrategyConfig = ROUNDS) -> Orchestrator:
    return Orchestrator({worker.model_name: worker}, FixedPolicy((worker.model_name,), strategy))


async def test_no_budget_changes_nothing() -> None:
    """Without a budget the strategy runs to the end and nothing is marked stopped."""
    worker = ScriptedWorker("m", cycle_texts(TEXTS))
    answer = await _orch(worker).answer("2 + 2?")
    assert answer.answer == "4"
    assert len(answer.trace.candidates) == 10
    assert stopped_by(answer) is None


async def test_token_budget_stops_at_the_first_call_past_it() -> None:
    """Once the query's prompt + completion tokens reach max_total_tokens the next call is
    refused: the answer is the majority of the samples so far, every token is counted, and
    the answer says the budget stopped it."""
    probe = ScriptedWorker("m", cycle_texts(TEXTS))
    one_call = await _orch(probe, ROUNDS.model_copy(update={"n": 1})).answer("2 + 2?")
    per_call = one_call.usage.prompt_tokens + one_call.usage.completion_tokens
    worker = ScriptedWorker("m", cycle_texts(TEXTS))
    budget = QueryBudget(max_total_tokens=3 * per_call - 1)  # spent after the third call
    answer = await _orch(worker).answer("2 + 2?", budget=budget)
    assert stopped_by(answer) == "budget"
    assert answer.stopped_by == "budget"  # typed; no longer in trace.extra
    assert "stopped_by" not in answer.trace.extra
    assert len(worker.requests) == 3
    assert [c.answer for c in answer.trace.candidates] == ["4", "5", "4"]
    assert answer.answer == "4"
    assert answer.status == "ok"
    assert answer.usage.prompt_tokens + answer.usage.completion_tokens == 3 * per_call
    assert answer.trace.vote is not None
    assert answer.trace.vote.counts == {"4": 2.0, "5": 1.0}
    assert answer.trace.failures == []  # a refused call is not a failure


async def test_a_budget_the_query_fits_in_does_not_stop_it() -> None:
    """A query that finishes within its budget answers as if it had none."""
    worker = ScriptedWorker("m", cycle_texts(TEXTS))
    answer = await _orch(worker).answer("2 + 2?", budget=QueryBudget(max_total_tokens=10**6))
    assert stopped_by(answer) is None
    assert len(answer.trace.candidates) == 10


async def test_deadline_cancels_the_call_in_flight_and_answers_with_what_it_has() -> None:
    """At the deadline the strategy is cancelled (the worker sees its call cancelled) and
    the best answer so far comes back at once, marked as stopped by the deadline."""
    worker = SlowWorker("m", TEXTS, delay_s=0.1)
    started = time.perf_counter()
    answer = await _orch(worker).answer("2 + 2?", budget=QueryBudget(deadline_s=0.35))
    elapsed = time.perf_counter() - started
    assert stopped_by(answer) == "deadline"
    assert 0.3 < elapsed < 1.0
    assert worker.cancelled == 1
    assert 2 <= len(answer.trace.candidates) <= 4
    assert answer.answer == "4"
    assert answer.usage.completion_tokens == sum(
        c.completion_tokens for c in answer.trace.candidates
    )


async def test_deadline_before_any_answer_is_no_answer() -> None:
    """A deadline that comes before the first sample leaves no answer, and says so."""
    worker = SlowWorker("m", TEXTS, delay_s=1.0)
    answer = await _orch(worker).answer("2 + 2?", budget=QueryBudget(deadline_s=0.05))
    assert answer.answer is None
    assert answer.status == "no_answer"
    assert stopped_by(answer) == "deadline"
    assert worker.cancelled == 1


async def test_budget_refusal_cancels_the_calls_running_beside_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A call refused while another runs beside it stops the strategy: the other call is
    cancelled rather than left running, and the answer is the best so far."""

    async def two_lanes(ctx: StrategyContext, config: object) -> StrategyResult:
        request = GenerateRequest(prompt=ctx.prompt, params=SamplingParams(max_tokens=8))

        async def fast_lane() -> None:
            for _ in range(3):
                ctx.candidates(await ctx.calls.generate("fast", request))

        await asyncio.gather(ctx.calls.generate("slow", request), fast_lane())
        raise AssertionError("the budget should have stopped the lanes")

    monkeypatch.setitem(STRATEGIES, "greedy", two_lanes)
    fast = ScriptedWorker("fast", cycle_texts(["The answer is 4."]))
    slow = SlowWorker("slow", ["The answer is 5."], delay_s=5.0)
    orch = Orchestrator({"fast": fast, "slow": slow}, FixedPolicy(("fast", "slow"), GreedyConfig()))
    started = time.perf_counter()
    answer = await orch.answer("2 + 2?", budget=QueryBudget(max_total_tokens=1))
    assert time.perf_counter() - started < 2.0
    assert slow.cancelled == 1
    assert len(fast.requests) == 1
    assert (answer.answer, stopped_by(answer)) == ("4", "budget")


async def test_cancelling_answer_cancels_every_call_in_flight() -> None:
    """A caller that cancels ``answer`` (a client gone) cancels the worker calls too."""
    slow = [SlowWorker(f"m{i}", TEXTS, delay_s=5.0) for i in range(2)]
    orch = Orchestrator({w.model_name: w for w in slow}, AllModelsPolicy(("m0", "m1"), ROUNDS))
    task = asyncio.create_task(orch.answer("2 + 2?"))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [w.cancelled for w in slow] == [1, 1]


async def test_events_tell_the_query_as_it_goes() -> None:
    """The sink sees the plan, each call started and finished (joined by id), the
    candidates as they are made, and last the decided answer."""
    events: list[QueryEvent] = []
    worker = ScriptedWorker("m", cycle_texts(TEXTS))
    strategy = ROUNDS.model_copy(update={"n": 3})
    answer = await _orch(worker, strategy).answer("2 + 2?", on_event=events.append)
    assert isinstance(events[0], Planned)
    assert events[0].models == ("m",)
    assert events[0].strategy == "self_consistency"
    started = [e for e in events if isinstance(e, CallStarted)]
    finished = [e for e in events if isinstance(e, CallFinished)]
    assert [e.call_id for e in started] == [e.call_id for e in finished] == [0, 1, 2]
    assert sum(e.completion_tokens for e in finished) == answer.usage.completion_tokens
    made = [e for e in events if isinstance(e, CandidatesMade)]
    assert [e.total for e in made] == [1, 2, 3]
    last = events[-1]
    assert isinstance(last, AnswerDecided)
    assert (last.answer, last.text, last.finish_reason) == ("4", answer.text, "stop")


async def test_stop_reason_is_the_finish_reason_of_the_decided_answer() -> None:
    """A query stopped by its budget decides its answer with finish_reason "budget"."""
    events: list[QueryEvent] = []
    worker = ScriptedWorker("m", cycle_texts(TEXTS))
    await _orch(worker).answer(
        "2 + 2?", budget=QueryBudget(max_total_tokens=1), on_event=events.append
    )
    last = events[-1]
    assert isinstance(last, AnswerDecided)
    assert (last.finish_reason, last.stopped_by) == ("budget", "budget")


async def test_a_cancelled_call_is_reported_as_cancelled() -> None:
    """A call cancelled in flight ends with a CallFinished marked cancelled."""
    events: list[QueryEvent] = []
    worker = SlowWorker("m", TEXTS, delay_s=1.0)
    await _orch(worker).answer(
        "2 + 2?", budget=QueryBudget(deadline_s=0.05), on_event=events.append
    )
    finished = [e for e in events if isinstance(e, CallFinished)]
    assert [e.cancelled for e in finished] == [True]


async def test_a_raising_sink_does_not_break_the_query() -> None:
    """An event sink that raises is logged; the query answers as usual."""

    def broken(event: QueryEvent) -> None:
        raise RuntimeError("sink down")

    worker = ScriptedWorker("m", cycle_texts(TEXTS))
    answer = await _orch(worker, GreedyConfig()).answer("2 + 2?", on_event=broken)
    assert answer.answer == "4"


async def test_strategy_given_per_query_replaces_the_planned_one() -> None:
    """``strategy=`` runs that strategy in place of the plan's, and the trace's plan says so."""
    worker = ScriptedWorker("m", cycle_texts(TEXTS))
    answer = await _orch(worker).answer("2 + 2?", strategy=GreedyConfig(max_tokens=8))
    assert answer.trace.plan["strategy"]["kind"] == "greedy"
    assert len(answer.trace.candidates) == 1


async def test_recorder_refuses_once_spent_and_says_so() -> None:
    """The recorder alone: a call past the budget raises BudgetExhausted after telling
    ``on_exhausted``; calls before it go through."""
    told: list[bool] = []
    worker = ScriptedWorker("m", cycle_texts(["one two three"]))
    calls = CallRecorder(
        {"m": worker},
        Usage(),
        Trace(query_id="q"),
        max_total_tokens=4,
        on_exhausted=lambda: told.append(True),
    )
    request = GenerateRequest(prompt="hi", params=SamplingParams(max_tokens=8))
    await calls.generate("m", request)  # 1 prompt + 3 completion tokens: spent
    assert calls.spent_tokens == 4
    with pytest.raises(BudgetExhausted, match="4 of max_total_tokens 4"):
        await calls.generate("m", request)
    assert told == [True]
    assert len(worker.requests) == 1


def test_best_so_far_is_the_majority_with_its_likeliest_candidate() -> None:
    """The stand-in answer is the majority; its text is the most likely backing candidate."""

    def cand(answer: str | None, logprob: float) -> Candidate:
        return Candidate(model="m", text=f"{answer} {logprob}", answer=answer,
                         completion_tokens=2, total_logprob=logprob,
                         finish_reason="stop")  # fmt: skip

    vote, chosen = best_so_far([cand("4", -3.0), cand("5", -0.1), cand("4", -1.0), cand(None, 0)])
    assert vote.winner == "4"
    assert chosen is not None
    assert chosen.total_logprob == -1.0
    vote, chosen = best_so_far([cand(None, 0.0)])
    assert (vote.winner, chosen) == (None, None)


def test_query_budget_refuses_nonsense() -> None:
    """Budgets are positive: zero tokens or a non-positive deadline is a validation error."""
    with pytest.raises(ValueError, match="max_total_tokens"):
        QueryBudget(max_total_tokens=0)
    with pytest.raises(ValueError, match="deadline_s"):
        QueryBudget(deadline_s=0)
    assert Query(text="x").id  # queries still carry their own id


def test_module_examples_run() -> None:
    """The ``Example:`` in orchestrator.budget's docstring runs as shown."""
    import doctest

    import orchestrator.budget

    assert doctest.testmod(orchestrator.budget).failed == 0


async def test_a_watched_greedy_query_streams_its_tokens_as_they_are_made() -> None:
    """With a sink, greedy streams through the worker: TokenDeltas come between its call's
    start and finish, the first well before the answer, and join to the answer's text."""
    timed: list[tuple[float, QueryEvent]] = []
    worker = ScriptedWorker("m", cycle_texts(["two plus two is four. The answer is 4."]),
                            token_delay_s=0.02)  # fmt: skip
    started = time.perf_counter()
    answer = await _orch(worker, GreedyConfig()).answer(
        "2 + 2?", on_event=lambda e: timed.append((time.perf_counter() - started, e))
    )
    events = [e for _, e in timed]
    deltas = [(t, e) for t, e in timed if isinstance(e, TokenDelta)]
    assert len(deltas) == 9
    assert "".join(e.text for _, e in deltas) == answer.text
    first = events.index(deltas[0][1])
    assert isinstance(events[first - 1], CallStarted)
    assert isinstance(events[first + 9], CallFinished)
    assert timed[-1][0] - deltas[0][0] >= 7 * 0.02
    assert answer.answer == "4"


def test_an_answer_saved_with_the_old_stopped_by_key_loads_it_as_the_field() -> None:
    """Answers written before ``Answer.stopped_by`` kept it in trace.extra: loading one
    moves it to the field."""
    answer = Answer(
        query=Query(text="x"),
        answer="4",
        text="4",
        usage=Usage(),
        trace=Trace(query_id="q", extra={"stopped_by": "deadline", "other": 1}),
    )
    loaded = Answer.model_validate_json(answer.model_dump_json())
    assert loaded.stopped_by == answer.stopped_by == "deadline"
    assert loaded.trace.extra == {"other": 1}
    assert stopped_by(loaded) == "deadline"
