"""What a running query reports as it goes, for progress displays, streams and metrics.

``Orchestrator.answer(query, on_event=sink)`` calls ``sink(event)`` synchronously, in the
query's event loop, for each of::

    Planned          the policy's plan
    CallStarted      a worker (or step-verifier) call begins     ─┐ one pair per call,
    CallFinished     it ended: tokens, seconds, error/cancelled  ─┘ joined by call_id
    TokenDelta       text a streamed call made (``CallRecorder.stream_generate``: greedy
                     and sample stream when the query has a sink), between the two
    CandidatesMade   candidates extracted from a call's completions
    AnswerDecided    the answer is chosen (the last event, unless the query fails or is
                     cancelled)

A sink must not block (push to a queue) and should not raise: an exception it raises is
logged and the query goes on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orchestrator.types import CallKind, Candidate, StopReason, VoteRecord

__all__ = [
    "AnswerDecided",
    "CallFinished",
    "CallStarted",
    "CandidatesMade",
    "EventSink",
    "Planned",
    "QueryEvent",
    "TokenDelta",
]


@dataclass(frozen=True)
class Planned:
    """The plan: its models, its strategy's kind, and all of it as the trace keeps it."""

    models: tuple[str, ...]
    strategy: str
    plan: dict[str, Any]


@dataclass(frozen=True)
class CallStarted:
    call_id: int
    model: str
    kind: CallKind
    n: int


@dataclass(frozen=True)
class CallFinished:
    """``error`` is None for a call that returned; ``cancelled`` for one cancelled in flight
    (its tokens count 0, except a streamed call's: the completion tokens it had streamed)."""

    call_id: int
    model: str
    kind: CallKind
    n: int
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    failovers: int = 0
    error: str | None = None
    cancelled: bool = False


@dataclass(frozen=True)
class CandidatesMade:
    """New candidates, and how many the query has made in all (these included)."""

    candidates: tuple[Candidate, ...]
    total: int


@dataclass(frozen=True)
class TokenDelta:
    """Text sample ``sample`` of call ``call_id`` produced since its last delta; a sample's
    deltas join to its completion's text."""

    call_id: int
    model: str
    sample: int
    text: str


@dataclass(frozen=True)
class AnswerDecided:
    """The chosen answer and its candidate's text; ``stopped_by`` when a budget or the
    deadline ended the query (then the answer is the best so far)."""

    answer: str | None
    text: str
    finish_reason: str
    vote: VoteRecord | None = None
    stopped_by: StopReason | None = None


QueryEvent = Planned | CallStarted | CallFinished | CandidatesMade | TokenDelta | AnswerDecided

EventSink = Callable[[QueryEvent], None]
