"""``Evidence``: the rerankers' model calls, gathered once per component and shared.

The calls are gathered in components (``COMPONENTS``), each charged its own calls, tokens
and seconds (the recorder's ``mark`` / ``cost_since``); rerankers given the same
``Evidence`` share what they both need, so comparing all four on one candidate set costs
RSA's calls plus the reviewer's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from orchestrator.recorder import CallRecorder
from orchestrator.rerank.model_calls import (
    describe_candidates,
    listener_matrix,
    reviewer_logprobs,
)
from orchestrator.rerank.task import RerankTask

__all__ = ["COMPONENTS", "ComponentCost", "Evidence", "gather_evidence"]

COMPONENTS = ("coder_column", "reviewer", "describe", "listener_rest")
"""What the rerankers read, in the order it is gathered: ``coder_column`` is
``log P(c | I_0)``; ``reviewer`` is ``log P(I_0 | c)``; ``describe`` the greedy descriptions;
``listener_rest`` the listener columns of the descriptions."""


@dataclass(frozen=True)
class ComponentCost:
    """What one evidence component cost: calls, tokens, summed worker and wall seconds."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    worker_seconds: float = 0.0
    wall_seconds: float = 0.0

    def __add__(self, other: ComponentCost) -> ComponentCost:
        return ComponentCost(
            self.calls + other.calls,
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.worker_seconds + other.worker_seconds,
            self.wall_seconds + other.wall_seconds,
        )


@dataclass
class Evidence:
    """The log-probs and descriptions gathered so far, and what each component cost."""

    coder_column: list[float] | None = None
    reviewer: list[float] | None = None
    descriptions: list[str] | None = None
    listener_rest: list[list[float]] | None = None
    cost: dict[str, ComponentCost] = field(default_factory=dict)

    @property
    def L0(self) -> list[list[float]]:
        """The n x (n + 1) listener matrix: column 0 then one column per description."""
        if self.coder_column is None or self.listener_rest is None:
            raise ValueError("the listener matrix needs coder_column and listener_rest")
        return [[c, *rest] for c, rest in zip(self.coder_column, self.listener_rest, strict=True)]

    def cost_of(self, components: Sequence[str]) -> ComponentCost:
        return sum((self.cost[c] for c in components), ComponentCost())


async def gather_evidence(
    calls: CallRecorder,
    model: str,
    task: RerankTask,
    components: Sequence[str],
    *,
    describe_max_tokens: int = 96,
    evidence: Evidence | None = None,
) -> Evidence:
    """Fill ``components`` (and what they depend on) into ``evidence``, one component at a
    time so each one's calls and seconds are charged to it alone; filled ones are kept."""
    evidence = evidence or Evidence()
    wanted = set(components)
    if "listener_rest" in wanted:
        wanted.add("describe")
    for component in COMPONENTS:
        if component not in wanted or component in evidence.cost:
            continue
        mark = calls.mark()
        if component == "coder_column":
            column = await listener_matrix(calls, model, task, [task.shown_instruction])
            evidence.coder_column = [row[0] for row in column]
        elif component == "reviewer":
            evidence.reviewer = await reviewer_logprobs(calls, model, task)
        elif component == "describe":
            evidence.descriptions = await describe_candidates(
                calls, model, task, max_tokens=describe_max_tokens
            )
        else:
            assert evidence.descriptions is not None
            evidence.listener_rest = await listener_matrix(
                calls, model, task, evidence.descriptions
            )
        spent = calls.cost_since(mark)
        evidence.cost[component] = ComponentCost(
            calls=spent.calls,
            prompt_tokens=spent.prompt_tokens,
            completion_tokens=spent.completion_tokens,
            worker_seconds=spent.seconds,
            wall_seconds=spent.wall_seconds,
        )
    return evidence
