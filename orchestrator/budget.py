"""Per-query budgets: a cap on the tokens of every worker call together, and a deadline.

``Orchestrator.answer(query, budget=QueryBudget(...))`` enforces them:

* ``max_total_tokens``: prompt + completion tokens summed over every call the query makes
  (the ``usage`` total). Once the running total reaches it, the recorder refuses the next
  call and the strategy is stopped; calls already in flight finish and are counted, so the
  total can pass the cap by what those calls cost.
* ``deadline_s``: seconds from the start of ``answer``; when they run out the strategy's
  task is cancelled, and with it every worker call in flight.

Either way the query answers with the best answer so far (``best_so_far``: a majority vote
over the candidates recorded until then) and says what stopped it: ``Answer.stopped_by``
is ``"budget"`` or ``"deadline"``.

Example:
    >>> QueryBudget(max_total_tokens=4000, deadline_s=30).deadline_s
    30.0
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.aggregation.voting import VoteResult, majority_vote
from orchestrator.errors import OrchestratorError
from orchestrator.types import Answer, Candidate, StopReason

__all__ = [
    "STOPPED_BY",
    "BudgetExhausted",
    "QueryBudget",
    "StopReason",
    "best_so_far",
    "stopped_by",
]

STOPPED_BY = "stopped_by"
"""The ``trace.extra`` key that held the ``StopReason`` before ``Answer.stopped_by`` (read
when an old answer is loaded, no longer written)."""


class QueryBudget(BaseModel):
    """Limits on one query; None: no limit."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_total_tokens: int | None = Field(
        default=None, ge=1, description="prompt + completion tokens over every worker call"
    )
    deadline_s: float | None = Field(default=None, gt=0, description="seconds for the query")


class BudgetExhausted(OrchestratorError):
    """A worker call refused because the query's token budget is spent."""

    def __init__(self, spent: int, limit: int) -> None:
        self.spent, self.limit = spent, limit
        super().__init__(f"token budget spent: {spent} of max_total_tokens {limit}")


def best_so_far(candidates: Sequence[Candidate]) -> tuple[VoteResult, Candidate | None]:
    """A majority vote over ``candidates`` and the candidate standing for its winner (the
    most likely by mean token log-prob); no candidate with an answer: winner None."""
    vote = majority_vote([c.answer for c in candidates])
    backing = [c for c in candidates if vote.winner is not None and c.answer == vote.winner]
    if not backing:
        return vote, None
    return vote, max(backing, key=lambda c: c.total_logprob / max(c.completion_tokens, 1))


def stopped_by(answer: Answer) -> StopReason | None:
    """What stopped ``answer``'s query early (``"budget"``/``"deadline"``), or None: its
    ``stopped_by``."""
    return answer.stopped_by
