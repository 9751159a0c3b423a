"""The exact early stop of a vote over samples (``exact_stop: true``).

The samples run as concurrent calls of one sample each (``CallRecorder.stream_generate``,
so a cancelled one stops at its next token). After each finishes, its candidates vote with
those before; once the leader leads the runner-up by more than the vote weight still to
come (the samples running, plus ``later_weight`` for samples not started yet), no outcome
of the rest can change the winner (``cannot_be_overtaken``: strict, so an achievable tie
is not settled and the tie rule never matters). The running samples are then cancelled.

The candidates come back in the order of the requests (not of finishing), so a vote over
them breaks ties exactly as the vote over all samples drawn in one call would.

``ExactStopCount`` adds up what a strategy's rounds drew and records it in the trace
(``extra["exact_stop"]``): samples finished and cancelled, the completion tokens the
samples really made (the cancelled ones' partial tokens included, also apart) and an
estimate of the tokens saved, labelled as one: the finished samples' mean length per
cancelled sample. It is rough either way: the samples still running when the vote settles
are the longer ones (they run at the same pace), and a seeded run without the stop says
exactly what it saved (``benchmarks/server.py`` measures it so).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestrator.aggregation.voting import cannot_be_overtaken
from orchestrator.strategies.base import StrategyContext
from orchestrator.strategies.votes import plain_vote
from orchestrator.types import Candidate
from workers.base import GenerateRequest, GenerateResult

__all__ = ["ExactStopCount", "SettledDraw", "sample_until_settled", "sample_weight"]

ESTIMATE = (
    "an estimate: mean completion tokens of the finished samples x samples cancelled in "
    "flight or not started (what each would still have made, roughly)"
)


@dataclass(frozen=True)
class SettledDraw:
    """What one draw made: the finished samples' candidates (in request order), whether
    the vote was settled before every sample finished, how many were cancelled in flight,
    and the completion tokens of the finished ones."""

    candidates: list[Candidate]
    settled: bool
    cancelled: int
    finished: int
    finished_tokens: int


def sample_weight(ctx: StrategyContext, model: str) -> float:
    """The vote weight one sample of ``model`` carries (1 without plan weights)."""
    return ctx.vote_weights.get(model, 0.0) if ctx.vote_weights else 1.0


async def sample_until_settled(
    ctx: StrategyContext,
    requests: Sequence[tuple[str, GenerateRequest]],
    *,
    earlier: Sequence[Candidate] = (),
    later_weight: float = 0.0,
) -> SettledDraw:
    """Run the ``(model, one-sample request)`` pairs concurrently until all finish or the
    vote over ``earlier`` and the finished samples is settled (see the module's
    docstring); the first failure cancels the rest and is raised."""
    tasks = {
        asyncio.create_task(ctx.calls.stream_generate(model, request, deltas=False)): i
        for i, (model, request) in enumerate(requests)
    }
    weights = [sample_weight(ctx, model) for model, _ in requests]
    made: dict[int, list[Candidate]] = {}
    finished_tokens, settled = 0, False
    pending = set(tasks)
    try:
        while pending and not settled:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in sorted(done, key=tasks.__getitem__):
                result: GenerateResult = task.result()  # a failure ends the draw here
                made[tasks[task]] = ctx.candidates(result)
                finished_tokens += result.usage.completion_tokens
            voted = [*earlier, *_in_order(made)]
            remaining = sum(weights[tasks[t]] for t in pending) + later_weight
            settled = bool(pending) and cannot_be_overtaken(
                plain_vote(voted, ctx).result.counts, remaining
            )
    finally:
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return SettledDraw(_in_order(made), settled, len(pending), len(made), finished_tokens)


def _in_order(made: dict[int, list[Candidate]]) -> list[Candidate]:
    return [c for i in sorted(made) for c in made[i]]


@dataclass
class ExactStopCount:
    """The draws of one strategy run with ``exact_stop``, for its trace."""

    planned: int
    draws: list[SettledDraw] = field(default_factory=list)

    def add(self, draw: SettledDraw) -> None:
        self.draws.append(draw)

    def record(self, generated_tokens: int) -> dict[str, Any]:
        """``extra["exact_stop"]``; ``generated_tokens``: the completion tokens every call
        of the draws made (``CallRecorder.cost_since``)."""
        finished = sum(d.finished for d in self.draws)
        in_flight = sum(d.cancelled for d in self.draws)
        not_started = self.planned - finished - in_flight
        finished_tokens = sum(d.finished_tokens for d in self.draws)
        cancelled_tokens = max(0, generated_tokens - finished_tokens)
        mean = finished_tokens / finished if finished else 0.0
        saved = round(mean * (in_flight + not_started))
        return {
            "decided_early": any(d.settled for d in self.draws),
            "samples_planned": self.planned,
            "samples_finished": finished,
            "cancelled_in_flight": in_flight,
            "not_started": not_started,
            "generated_tokens": generated_tokens,
            "cancelled_tokens": cancelled_tokens,
            "saved_tokens_estimate": saved,
            "estimate": ESTIMATE,
        }
