"""The plain data a query produces: what was asked, what was generated, what was answered.

One ``Trace`` per query joins the routing decision, every generation (model, tokens,
latency), the vote and any failures; ``Answer`` carries it. All of it is pydantic, so a
trace is one ``model_dump_json()`` away from a JSONL line.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "Answer",
    "CallKind",
    "Candidate",
    "GenerationRecord",
    "ModelUsage",
    "Query",
    "StopReason",
    "TaskType",
    "Trace",
    "Usage",
    "VoteRecord",
]

TaskType = Literal["math", "code", "multiple_choice", "text"]

StopReason = Literal["budget", "deadline"]
"""What ended a query before its strategy finished (``Answer.stopped_by``)."""

_LEGACY_STOPPED_BY = "stopped_by"  # where answers written before ``Answer.stopped_by`` kept it


def _new_id() -> str:
    return uuid.uuid4().hex[:12]


class Query(BaseModel):
    """A question for the orchestrator. ``choices`` only for multiple choice."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1)
    task: TaskType = "math"
    id: str = Field(default_factory=_new_id)
    choices: tuple[str, ...] = ()
    entry_point: str | None = Field(default=None, description="function name, for code tasks")


class ModelUsage(BaseModel):
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latent_tokens: int = Field(default=0, description="of completion_tokens, latent ids")
    seconds: float = 0.0


class Usage(BaseModel):
    """Tokens and seconds per model, summed over every call made for one query."""

    per_model: dict[str, ModelUsage] = Field(default_factory=dict)
    wall_seconds: float = 0.0

    @property
    def completion_tokens(self) -> int:
        return sum(m.completion_tokens for m in self.per_model.values())

    @property
    def prompt_tokens(self) -> int:
        return sum(m.prompt_tokens for m in self.per_model.values())

    @property
    def latent_tokens(self) -> int:
        return sum(m.latent_tokens for m in self.per_model.values())

    @property
    def worker_seconds(self) -> float:
        return sum(m.seconds for m in self.per_model.values())

    def add(
        self,
        model: str,
        prompt_tokens: int,
        completion_tokens: int,
        seconds: float,
        *,
        latent_tokens: int = 0,
    ) -> None:
        m = self.per_model.setdefault(model, ModelUsage())
        m.calls += 1
        m.prompt_tokens += prompt_tokens
        m.completion_tokens += completion_tokens
        m.latent_tokens += latent_tokens
        m.seconds += seconds


class Candidate(BaseModel):
    """One generated solution and the answer extracted from it (None: none parsable)."""

    model: str
    text: str
    answer: str | None
    completion_tokens: int
    total_logprob: float
    finish_reason: Literal["stop", "length"]
    extraction_error: str | None = None


CallKind = Literal["generate", "score", "score_steps"]


class GenerationRecord(BaseModel):
    """One call through the worker seam (or to the step verifier), as the trace keeps it.

    ``cancelled``: a streamed call cancelled in flight (e.g. by an exact early stop); its
    ``completion_tokens`` are those it had streamed, its prompt tokens (unknown) 0."""

    model: str
    kind: CallKind
    n: int
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    error: str | None = None
    replica: str | None = Field(default=None, description="which pool replica answered")
    attempts: int = 1
    failovers: int = 0
    cancelled: bool = False


class VoteRecord(BaseModel):
    """How candidates were aggregated: counts per answer, the winner and its margin."""

    method: str
    counts: dict[str, float]
    winner: str | None
    margin: float = Field(description="(top - runner-up) / total weight; 1.0 is unanimous")
    stopped_early: bool = False
    tie: bool = Field(default=False, description="two or more answers shared the top count")
    tie_break: str | None = Field(
        default=None,
        description="the rule that picked the winner of a tie: first, plan_order, mean_logprob",
    )


class Trace(BaseModel):
    query_id: str
    plan: dict[str, Any] = Field(default_factory=dict)
    generations: list[GenerationRecord] = Field(default_factory=list)
    candidates: list[Candidate] = Field(default_factory=list)
    vote: VoteRecord | None = None
    failures: list[str] = Field(default_factory=list)
    extra: dict[str, Any] = Field(default_factory=dict)


class Answer(BaseModel):
    """The orchestrator's reply. ``answer`` is None when no candidate had a parsable answer;
    ``trace.failures`` then says why. ``stopped_by``: the budget or deadline that ended the
    query early (its answer is then the best so far); None when the strategy finished.

    Answers written before ``stopped_by`` existed kept it in ``trace.extra["stopped_by"]``;
    loading one moves it here.
    """

    query: Query
    answer: str | None
    text: str = Field(description="the full text of the chosen candidate")
    status: Literal["ok", "no_answer", "failed"] = "ok"
    stopped_by: StopReason | None = None
    usage: Usage
    trace: Trace

    @model_validator(mode="after")
    def _legacy_stopped_by(self) -> Answer:
        legacy = self.trace.extra.get(_LEGACY_STOPPED_BY)
        if legacy is not None and legacy in get_args(StopReason):
            del self.trace.extra[_LEGACY_STOPPED_BY]
            if self.stopped_by is None:
                self.stopped_by = legacy
        return self
