"""Rerankers: the model calls that fill ``rsa``'s inputs, through the worker seam.

Every reranker has the one signature ``await reranker.rerank(calls, model, task)`` and
returns a ``Reranking``: the chosen index, a score per candidate, and what it computed
(matrix, descriptions, log-probs) for the trace. ``build_reranker(kind, **options)`` picks
one by ``kind``: ``random``, ``coder``, ``coder_reviewer``, ``rsa``.

Prompts (one listener and one speaker for all columns, so the log-probs compare):

- speaker (describe, greedy): the candidate, then "describe in one sentence what it does"
  (text: "the question it answers"); the description is the reply's first non-empty line;
- listener, ``L0[i][j] = log P(c_i | I_j)``: "write code for: I_j" (text: I_j alone), with the
  candidate (code in a ```python fence) as the scored reply;
- reviewer, ``log P(I_0 | c_i)``: the candidate, then "write the instruction it was written
  for", with ``I_0`` as the scored reply.

For code with an entry point, ``def <entry_point>(`` and its call sites are renamed to ``f``
everywhere (candidates and ``I_0``), so no description can just repeat the function's name
and every column asks for the same ``f``. Identical candidates (or instructions) share one
call; calls are deterministic (greedy, scoring), so the numbers are what separate calls give.
"""

from __future__ import annotations

import abc
import asyncio
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from orchestrator.aggregation.rsa import (
    coder_reviewer_scores,
    coder_scores,
    random_choice,
    rsa_scores,
)
from orchestrator.recorder import CallRecorder
from workers.base import ChatMessage, GenerateRequest, Prompt, SamplingParams, ScoreRequest

__all__ = [
    "RERANKERS",
    "CoderReranker",
    "CoderReviewerReranker",
    "RSAReranker",
    "RandomReranker",
    "RerankTask",
    "Reranker",
    "Reranking",
    "build_reranker",
    "describe_candidates",
    "listener_matrix",
    "listener_prompt",
    "rename_entry_point",
    "reviewer_logprobs",
    "reviewer_prompt",
    "speaker_prompt",
]

RENAMED = "f"


def rename_entry_point(code: str, entry_point: str, new: str = RENAMED) -> str:
    """``def entry_point(`` and every call ``entry_point(`` become ``new``; attribute calls
    (``obj.entry_point(``) and longer names (``entry_point_2(``) are left alone.

    >>> rename_entry_point("def fib(n):\\n    return fib(n - 1) + self.fib(n)", "fib")
    'def f(n):\\n    return f(n - 1) + self.fib(n)'
    """
    return re.sub(rf"(?<![\w.]){re.escape(entry_point)}(?=\s*\()", new, code)


@dataclass(frozen=True)
class RerankTask:
    """What a reranker reads: the instruction ``I_0`` and the candidates.

    ``code``: the candidates are code (fenced and, with ``entry_point``, renamed to ``f``);
    otherwise they are text and the instruction is the question.
    """

    instruction: str
    candidates: tuple[str, ...]
    code: bool = False
    entry_point: str | None = None
    request_id: str = ""

    def _rename(self, text: str) -> str:
        if self.code and self.entry_point:
            return rename_entry_point(text, self.entry_point)
        return text

    @property
    def shown_instruction(self) -> str:
        """``I_0`` as the models see it (renamed for code)."""
        return self._rename(self.instruction)

    @property
    def shown_candidates(self) -> tuple[str, ...]:
        """The candidates as the models see them (renamed for code)."""
        return tuple(self._rename(c) for c in self.candidates)


@dataclass(frozen=True)
class Reranking:
    """The chosen index, one score per candidate, and what was computed (for the trace)."""

    best: int
    scores: tuple[float, ...]
    details: Mapping[str, Any] = field(default_factory=dict)


# --- prompts -----------------------------------------------------------------------------


def _fenced(code: str) -> str:
    return f"```python\n{code.rstrip()}\n```"


def _what(task: RerankTask) -> str:
    if not task.code:
        return "response"
    return f"Python function `{RENAMED}`" if task.entry_point else "Python program"


def _user(content: str) -> Prompt:
    return (ChatMessage(role="user", content=content),)


def speaker_prompt(task: RerankTask, candidate: str) -> Prompt:
    shown = _fenced(candidate) if task.code else candidate
    ask = (
        f"Describe in one sentence what the {_what(task)} does."
        if task.code
        else "In one sentence, state the question or task this response answers."
    )
    return _user(f"Here is a {_what(task)}:\n\n{shown}\n\n{ask} Reply with that sentence only.")


def listener_prompt(task: RerankTask, instruction: str) -> Prompt:
    if not task.code:
        return _user(instruction)
    return _user(
        f"Write a {_what(task)} for this task:\n\n{instruction}\n\n"
        "Reply with the code in one ```python code block."
    )


def reviewer_prompt(task: RerankTask, candidate: str) -> Prompt:
    shown = _fenced(candidate) if task.code else candidate
    ask = "the instruction it was written for" if task.code else "the question it answers"
    return _user(f"Here is a {_what(task)}:\n\n{shown}\n\nWrite {ask}.")


def _continuation(task: RerankTask, candidate: str) -> str:
    return _fenced(candidate) if task.code else candidate


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


# --- model calls -------------------------------------------------------------------------


async def describe_candidates(
    calls: CallRecorder, model: str, task: RerankTask, *, max_tokens: int = 96
) -> list[str]:
    """One greedy one-sentence description per candidate (concurrent generate calls)."""
    shown = task.shown_candidates
    unique = list(dict.fromkeys(shown))
    params = SamplingParams(temperature=0.0, max_tokens=max_tokens)
    results = await asyncio.gather(
        *(
            calls.generate(
                model,
                GenerateRequest(
                    prompt=speaker_prompt(task, c), params=params, request_id=task.request_id
                ),
            )
            for c in unique
        )
    )
    said = {c: _first_line(r.completions[0].text) for c, r in zip(unique, results, strict=True)}
    return [said[c] for c in shown]


async def listener_matrix(
    calls: CallRecorder, model: str, task: RerankTask, instructions: Sequence[str]
) -> list[list[float]]:
    """``M[i][j] = log P(candidate i | instructions[j])``: one score call per instruction,
    every candidate a continuation of it."""
    continuations = [_continuation(task, c) for c in task.shown_candidates]
    unique_cont = tuple(dict.fromkeys(continuations))
    unique_instr = list(dict.fromkeys(instructions))
    results = await asyncio.gather(
        *(
            calls.score(
                model,
                ScoreRequest(
                    prompt=listener_prompt(task, instr),
                    continuations=unique_cont,
                    request_id=task.request_id,
                ),
            )
            for instr in unique_instr
        )
    )
    logp = {
        (instr, cont): s.total_logprob
        for instr, result in zip(unique_instr, results, strict=True)
        for cont, s in zip(unique_cont, result.scores, strict=True)
    }
    return [[logp[(instr, cont)] for instr in instructions] for cont in continuations]


async def reviewer_logprobs(calls: CallRecorder, model: str, task: RerankTask) -> list[float]:
    """``log P(I_0 | c_i)`` per candidate: one score call per (distinct) candidate."""
    shown = task.shown_candidates
    unique = list(dict.fromkeys(shown))
    instruction = (task.shown_instruction,)
    results = await asyncio.gather(
        *(
            calls.score(
                model,
                ScoreRequest(
                    prompt=reviewer_prompt(task, c),
                    continuations=instruction,
                    request_id=task.request_id,
                ),
            )
            for c in unique
        )
    )
    logp = {c: r.scores[0].total_logprob for c, r in zip(unique, results, strict=True)}
    return [logp[c] for c in shown]


# --- rerankers ---------------------------------------------------------------------------


class Reranker(abc.ABC):
    """Picks one candidate. ``rerank`` refuses an empty set and makes no model call for one
    candidate (it is the pick); subclasses implement ``_rerank`` for two or more."""

    kind: ClassVar[str]

    async def rerank(self, calls: CallRecorder, model: str, task: RerankTask) -> Reranking:
        if not task.candidates:
            raise ValueError("nothing to rerank: no candidates")
        if len(task.candidates) == 1:
            return Reranking(best=0, scores=(0.0,), details={"skipped": "one candidate"})
        return await self._rerank(calls, model, task)

    @abc.abstractmethod
    async def _rerank(self, calls: CallRecorder, model: str, task: RerankTask) -> Reranking:
        """Rerank two or more candidates."""


@dataclass(frozen=True)
class RandomReranker(Reranker):
    """A uniformly random candidate (no model call); ``seed`` makes it repeatable."""

    kind: ClassVar[str] = "random"
    seed: int | None = None

    async def _rerank(self, calls: CallRecorder, model: str, task: RerankTask) -> Reranking:
        best = random_choice(len(task.candidates), self.seed)
        scores = tuple(1.0 if i == best else 0.0 for i in range(len(task.candidates)))
        return Reranking(best=best, scores=scores, details={"seed": self.seed})


@dataclass(frozen=True)
class CoderReranker(Reranker):
    """Coder: argmax ``log P(c | I_0)``; one score call."""

    kind: ClassVar[str] = "coder"

    async def _rerank(self, calls: CallRecorder, model: str, task: RerankTask) -> Reranking:
        column = await listener_matrix(calls, model, task, [task.shown_instruction])
        logp = [row[0] for row in column]
        choice = coder_scores(logp)
        return Reranking(best=choice.best, scores=choice.score, details={"logp_c_given_i0": logp})


@dataclass(frozen=True)
class CoderReviewerReranker(Reranker):
    """Coder-Reviewer: argmax ``log P(c | I_0) + log P(I_0 | c)``; 1 + n score calls."""

    kind: ClassVar[str] = "coder_reviewer"

    async def _rerank(self, calls: CallRecorder, model: str, task: RerankTask) -> Reranking:
        column, reverse = await asyncio.gather(
            listener_matrix(calls, model, task, [task.shown_instruction]),
            reviewer_logprobs(calls, model, task),
        )
        forward = [row[0] for row in column]
        choice = coder_reviewer_scores(forward, reverse)
        details = {"logp_c_given_i0": forward, "logp_i0_given_c": reverse}
        return Reranking(best=choice.best, scores=choice.score, details=details)


@dataclass(frozen=True)
class RSAReranker(Reranker):
    """CodeRSA: n greedy descriptions, then the n x (n + 1) listener matrix (n + 1 score
    calls), scored by ``rsa_scores``."""

    kind: ClassVar[str] = "rsa"
    describe_max_tokens: int = 96

    async def _rerank(self, calls: CallRecorder, model: str, task: RerankTask) -> Reranking:
        descriptions = await describe_candidates(
            calls, model, task, max_tokens=self.describe_max_tokens
        )
        instructions = [task.shown_instruction, *descriptions]
        L0 = await listener_matrix(calls, model, task, instructions)
        result = rsa_scores(L0)
        details = {
            "descriptions": descriptions,
            "L0": L0,
            "pairwise": list(result.pairwise),
            "support": list(result.support),
        }
        return Reranking(best=result.best, scores=result.score, details=details)


RERANKERS: dict[str, Callable[..., Reranker]] = {
    "random": RandomReranker,
    "coder": CoderReranker,
    "coder_reviewer": CoderReviewerReranker,
    "rsa": RSAReranker,
}


def build_reranker(kind: str, **options: Any) -> Reranker:
    """The reranker named ``kind``, built with ``options``; an unknown kind lists the known.

    >>> build_reranker("random", seed=3)
    RandomReranker(seed=3)
    """
    try:
        make = RERANKERS[kind]
    except KeyError:
        known = ", ".join(sorted(RERANKERS))
        raise ValueError(f"unknown reranker {kind!r}; known: {known}") from None
    return make(**options)
