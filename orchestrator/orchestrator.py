"""``Orchestrator``: the facade. Query in, ``Answer`` (with its trace and usage) out.

It asks the routing policy for a plan, runs the planned strategy on the planned models
through a ``CallRecorder`` and packs the result. A worker failure does not raise: the
answer comes back with ``status="failed"``, the reason in ``trace.failures`` and every
candidate generated before the failure kept in the trace.

Per query, ``answer`` also takes a ``QueryBudget`` (tokens over every call, a deadline: on
either, the strategy is cancelled and the best answer so far returned, see
``orchestrator.budget``), a strategy to run in place of the planned one, and an event sink
(``orchestrator.events``). Cancelling ``answer`` cancels the strategy and every worker
call in flight.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

import structlog

from orchestrator.budget import QueryBudget, best_so_far
from orchestrator.events import AnswerDecided, EventSink, Planned
from orchestrator.prompts import PromptConfig, build_prompt
from orchestrator.recorder import CallRecorder
from orchestrator.routing import RoutingPolicy
from orchestrator.strategies import StrategyConfig, StrategyContext, StrategyResult, run_strategy
from orchestrator.types import Answer, Query, StopReason, TaskType, Trace, Usage
from workers.base import Worker
from workers.errors import WorkerFailure

if TYPE_CHECKING:
    from workers.base import StepVerifier

__all__ = ["Orchestrator"]

log = structlog.get_logger(__name__)


class Orchestrator:
    """Answers queries with a pool of workers under a routing policy.

    Example:
        >>> from workers.scripted import ScriptedWorker, cycle_texts
        >>> from policies import FixedPolicy
        >>> from orchestrator.strategies import GreedyConfig
        >>> worker = ScriptedWorker("m", cycle_texts(["2 + 2 = 4. The answer is 4."]))
        >>> orch = Orchestrator({"m": worker}, FixedPolicy(("m",), GreedyConfig()))
        >>> orch.answer_sync("What is 2 + 2?").answer
        '4'
    """

    def __init__(
        self,
        workers: Mapping[str, Worker],
        policy: RoutingPolicy,
        *,
        task: TaskType = "math",
        prompts: Mapping[TaskType, PromptConfig] | None = None,
        step_verifier: StepVerifier | None = None,
    ) -> None:
        missing = sorted(policy.models() - set(workers))
        if missing:
            raise ValueError(
                f"policy plans model(s) {missing} with no worker (workers: {sorted(workers)})"
            )
        self.workers = dict(workers)
        self.policy = policy
        self.task = task
        self.prompts = dict(prompts or {})
        self.step_verifier = step_verifier

    async def answer(
        self,
        query: Query | str,
        *,
        budget: QueryBudget | None = None,
        strategy: StrategyConfig | None = None,
        on_event: EventSink | None = None,
    ) -> Answer:
        """Answer ``query`` under ``budget`` (None: no limits), running ``strategy`` in
        place of the one the policy plans (None: the planned one), reporting progress to
        ``on_event``."""
        if isinstance(query, str):
            query = Query(text=query, task=self.task)
        with structlog.contextvars.bound_contextvars(query_id=query.id):
            return await self._answer(query, budget or QueryBudget(), strategy, on_event)

    def answer_sync(self, query: Query | str) -> Answer:
        """``answer`` for code without an event loop."""
        return asyncio.run(self.answer(query))

    async def close(self) -> None:
        await asyncio.gather(*(w.close() for w in self.workers.values()))

    async def __aenter__(self) -> Orchestrator:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _answer(
        self,
        query: Query,
        budget: QueryBudget,
        strategy: StrategyConfig | None,
        on_event: EventSink | None,
    ) -> Answer:
        started = time.perf_counter()
        usage = Usage()
        try:
            plan = self.policy.plan(query)
        except Exception as exc:  # a policy that cannot plan fails this query, not the caller
            log.exception("planning_failed")
            trace = Trace(query_id=query.id, failures=[f"planning: {type(exc).__name__}: {exc}"])
            return self._failed(query, usage, trace, started)
        if strategy is not None:
            plan = plan.model_copy(update={"strategy": strategy})
        log.info("planned", models=list(plan.models), strategy=plan.strategy.kind)
        trace = Trace(query_id=query.id, plan=plan.model_dump(mode="json"))
        stop = _Stop()
        calls = CallRecorder(
            self.workers,
            usage,
            trace,
            step_verifier=self.step_verifier,
            max_total_tokens=budget.max_total_tokens,
            on_exhausted=lambda: stop("budget"),
            on_event=on_event,
        )
        ctx = StrategyContext(
            query=query,
            models=plan.models,
            prompt=build_prompt(query, self.prompts.get(query.task)),
            calls=calls,
            vote_weights=plan.vote_weights,
        )
        calls.emit(Planned(plan.models, plan.strategy.kind, trace.plan))
        try:
            result = await _run(ctx, plan.strategy, trace, stop, budget, started)
        except Exception as exc:  # recorded: a failed answer keeps what was computed
            if isinstance(exc, WorkerFailure):
                log.error("query_failed", reason=str(exc))
            else:
                log.exception("query_failed", strategy=plan.strategy.kind)
            calls.record_failure(f"strategy {plan.strategy.kind}", exc)
            return self._failed(query, usage, trace, started)
        usage.wall_seconds = time.perf_counter() - started
        trace.vote = result.vote
        trace.extra.update(result.extra)
        if result.answer is None:
            reasons = sorted({c.extraction_error or "no answer" for c in result.candidates})
            trace.failures.append("no candidate had a parsable answer: " + "; ".join(reasons))
        text = result.chosen.text if result.chosen else ""
        finish = stop.reason or (result.chosen.finish_reason if result.chosen else "stop")
        calls.emit(AnswerDecided(result.answer, text, finish, result.vote, stop.reason))
        log.info(
            "answered",
            answer=result.answer,
            tokens=usage.completion_tokens,
            seconds=round(usage.wall_seconds, 3),
            stopped_by=stop.reason,
        )
        return Answer(
            query=query,
            answer=result.answer,
            text=text,
            status="ok" if result.answer is not None else "no_answer",
            stopped_by=stop.reason,
            usage=usage,
            trace=trace,
        )

    @staticmethod
    def _failed(query: Query, usage: Usage, trace: Trace, started: float) -> Answer:
        usage.wall_seconds = time.perf_counter() - started
        return Answer(query=query, answer=None, text="", status="failed", usage=usage, trace=trace)


async def _run(
    ctx: StrategyContext,
    strategy: StrategyConfig,
    trace: Trace,
    stop: _Stop,
    budget: QueryBudget,
    started: float,
) -> StrategyResult:
    """Run the strategy in a task of its own, which the budget and the deadline may cancel
    (through ``stop``); then the best answer so far stands in for the strategy's."""
    task = asyncio.create_task(run_strategy(ctx, strategy), name=f"query-{ctx.query.id}")
    stop.task = task
    timer = None
    if budget.deadline_s is not None:
        left = max(0.0, budget.deadline_s - (time.perf_counter() - started))
        timer = asyncio.get_running_loop().call_later(left, stop, "deadline")
    try:
        return await task  # cancelling the caller cancels the task (and its calls)
    except (asyncio.CancelledError, Exception):
        current = asyncio.current_task()
        if stop.reason is None or (current is not None and current.cancelling()):
            raise
        log.info("query_stopped", stopped_by=stop.reason)
    finally:
        if timer is not None:
            timer.cancel()
    vote, chosen = best_so_far(trace.candidates)
    return StrategyResult(
        answer=vote.winner,
        chosen=chosen,
        candidates=list(trace.candidates),
        vote=vote.to_record(stopped_early=True),
    )


class _Stop:
    """Stops a query's strategy task early, remembering why (the first reason wins)."""

    def __init__(self) -> None:
        self.reason: StopReason | None = None
        self.task: asyncio.Task[StrategyResult] | None = None

    def __call__(self, reason: StopReason) -> None:
        if self.reason is not None or (self.task is not None and self.task.done()):
            return  # stopped already, or finished: nothing to stop
        self.reason = reason
        if self.task is not None:
            self.task.cancel()
