"""``Orchestrator``: the facade. Query in, ``Answer`` (with its trace and usage) out.

It asks the routing policy for a plan, runs the planned strategy on the planned models
through a ``CallRecorder`` and packs the result. A worker failure does not raise: the
answer comes back with ``status="failed"``, the reason in ``trace.failures`` and every
candidate generated before the failure kept in the trace.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

import structlog

from orchestrator.prompts import PromptConfig, build_prompt
from orchestrator.recorder import CallRecorder
from orchestrator.routing import RoutingPolicy
from orchestrator.strategies import StrategyContext, run_strategy
from orchestrator.types import Answer, Query, TaskType, Trace, Usage
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

    async def answer(self, query: Query | str) -> Answer:
        if isinstance(query, str):
            query = Query(text=query, task=self.task)
        with structlog.contextvars.bound_contextvars(query_id=query.id):
            return await self._answer(query)

    def answer_sync(self, query: Query | str) -> Answer:
        """``answer`` for code without an event loop."""
        return asyncio.run(self.answer(query))

    async def close(self) -> None:
        await asyncio.gather(*(w.close() for w in self.workers.values()))

    async def __aenter__(self) -> Orchestrator:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _answer(self, query: Query) -> Answer:
        started = time.perf_counter()
        usage = Usage()
        try:
            plan = self.policy.plan(query)
        except Exception as exc:  # a policy that cannot plan fails this query, not the caller
            log.exception("planning_failed")
            trace = Trace(query_id=query.id, failures=[f"planning: {type(exc).__name__}: {exc}"])
            return self._failed(query, usage, trace, started)
        log.info("planned", models=list(plan.models), strategy=plan.strategy.kind)
        trace = Trace(query_id=query.id, plan=plan.model_dump(mode="json"))
        calls = CallRecorder(self.workers, usage, trace, step_verifier=self.step_verifier)
        prompt = build_prompt(query, self.prompts.get(query.task))
        ctx = StrategyContext(
            query=query,
            models=plan.models,
            prompt=prompt,
            calls=calls,
            vote_weights=plan.vote_weights,
        )
        try:
            result = await run_strategy(ctx, plan.strategy)
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
        log.info(
            "answered",
            answer=result.answer,
            tokens=usage.completion_tokens,
            seconds=round(usage.wall_seconds, 3),
        )
        return Answer(
            query=query,
            answer=result.answer,
            text=result.chosen.text if result.chosen else "",
            status="ok" if result.answer is not None else "no_answer",
            usage=usage,
            trace=trace,
        )

    @staticmethod
    def _failed(query: Query, usage: Usage, trace: Trace, started: float) -> Answer:
        usage.wall_seconds = time.perf_counter() - started
        return Answer(query=query, answer=None, text="", status="failed", usage=usage, trace=trace)
