"""What every strategy receives and returns.

A strategy is one async function ``(ctx, config) -> StrategyResult``. It reaches models
only through ``ctx.calls`` (so usage and the trace are kept for it) and turns completions
into candidates with ``ctx.candidates``. It returns what it found and never reads the
trace: the recorder writes it, the ``Orchestrator`` packs it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from orchestrator.extraction import extract_answer
from orchestrator.recorder import CallRecorder
from orchestrator.types import Candidate, Query, VoteRecord
from workers.base import GenerateResult, Prompt, SamplingParams

__all__ = ["SamplingSettings", "StrategyContext", "StrategyFn", "StrategyResult", "sampling_params"]


@dataclass
class StrategyContext:
    query: Query
    models: tuple[str, ...]
    prompt: Prompt
    calls: CallRecorder
    #: Per-model vote weights from the plan; empty means one vote per candidate.
    vote_weights: Mapping[str, float] = field(default_factory=dict)

    def candidates(self, result: GenerateResult) -> list[Candidate]:
        """Extract an answer from each completion; the recorder keeps every candidate in the
        trace at once, so a later worker failure does not lose them."""
        made = []
        for completion in result.completions:
            extraction = extract_answer(
                completion.text,
                self.query.task,
                choices=self.query.choices,
                entry_point=self.query.entry_point,
            )
            made.append(
                Candidate(
                    model=result.model,
                    text=completion.text,
                    answer=extraction.answer,
                    completion_tokens=len(completion.token_ids),
                    total_logprob=completion.total_logprob,
                    finish_reason=completion.finish_reason,
                    extraction_error=extraction.error,
                )
            )
        self.calls.record_candidates(made)
        return made


@dataclass
class StrategyResult:
    """The chosen candidate (None when none had an answer) and, if any, the vote."""

    answer: str | None
    chosen: Candidate | None
    candidates: list[Candidate]
    vote: VoteRecord | None = None
    extra: dict[str, Any] = field(default_factory=dict)


StrategyFn = Callable[[StrategyContext, Any], Awaitable[StrategyResult]]


class SamplingSettings(Protocol):
    """The sampling fields a strategy config carries."""

    @property
    def temperature(self) -> float: ...
    @property
    def top_p(self) -> float: ...
    @property
    def top_k(self) -> int: ...
    @property
    def max_tokens(self) -> int: ...
    @property
    def seed(self) -> int | None: ...


def sampling_params(
    config: SamplingSettings, *, n: int = 1, seed_offset: int = 0, stop: tuple[str, ...] = ()
) -> SamplingParams:
    """``n`` samples under ``config``'s settings; sample i uses seed + seed_offset + i."""
    return SamplingParams(
        stop=stop,
        n=n,
        temperature=config.temperature,
        top_p=config.top_p,
        top_k=config.top_k,
        max_tokens=config.max_tokens,
        seed=None if config.seed is None else config.seed + seed_offset,
    )
