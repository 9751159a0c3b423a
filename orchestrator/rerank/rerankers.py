"""Rerankers: the model calls that fill ``rsa``'s inputs, through the worker seam.

Every reranker has the one signature ``await reranker.rerank(calls, model, task)`` and
returns a ``Reranking``: the chosen index, a score per candidate, and what it computed
(matrix, descriptions, log-probs) for the trace. ``build_reranker(kind, **options)`` picks
one by ``kind``: ``random``, ``coder``, ``coder_reviewer``, ``rsa``.

The calls are gathered as ``Evidence`` in components (``COMPONENTS``), each charged its own
calls, tokens and seconds; rerankers given the same ``Evidence`` share what they both need,
so comparing all four on one candidate set costs RSA's calls plus the reviewer's.

Prompts (one listener and one speaker for all columns, so the log-probs compare):

- speaker (describe, greedy): the candidate, then "describe in one sentence what it does"
  (text: "the question it answers"); the description is the reply's first non-empty line;
- listener, ``L0[i][j] = log P(c_i | I_j)``: "write code for: I_j" (text: I_j alone), with the
  candidate (code in a ```python fence) as the scored reply;
- reviewer, ``log P(I_0 | c_i)``: the candidate, then "write the instruction it was written
  for", with ``I_0`` as the scored reply.

Code candidates are shown without docstrings and comments (``strip_docstrings``). For code
with an entry point, ``def <entry_point>(`` and its call sites are renamed to ``f``
everywhere (candidates and ``I_0``), so no description can just repeat the function's name
and every column asks for the same ``f``. Identical candidates (or instructions) share one
call; calls are deterministic (greedy, scoring), so the numbers are what separate calls give.
"""

from __future__ import annotations

import abc
import ast
import asyncio
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from orchestrator.recorder import CallRecorder
from orchestrator.rerank.codersa import (
    coder_reviewer_scores,
    coder_scores,
    random_choice,
    rsa_scores,
)
from workers.base import ChatMessage, GenerateRequest, Prompt, SamplingParams, ScoreRequest

__all__ = [
    "COMPONENTS",
    "RERANKERS",
    "CoderReranker",
    "CoderReviewerReranker",
    "ComponentCost",
    "Evidence",
    "RSAReranker",
    "RandomReranker",
    "RerankTask",
    "Reranker",
    "Reranking",
    "build_reranker",
    "describe_candidates",
    "gather_evidence",
    "listener_matrix",
    "listener_prompt",
    "rename_entry_point",
    "reviewer_logprobs",
    "reviewer_prompt",
    "speaker_prompt",
    "strip_docstrings",
]

RENAMED = "f"


def rename_entry_point(code: str, entry_point: str, new: str = RENAMED) -> str:
    """``def entry_point(`` and every call ``entry_point(`` become ``new``; attribute calls
    (``obj.entry_point(``) and longer names (``entry_point_2(``) are left alone.

    >>> rename_entry_point("def fib(n):\\n    return fib(n - 1) + self.fib(n)", "fib")
    'def f(n):\\n    return f(n - 1) + self.fib(n)'
    """
    return re.sub(rf"(?<![\w.]){re.escape(entry_point)}(?=\s*\()", new, code)


def strip_docstrings(code: str) -> str:
    """``code`` without docstrings and comments (re-rendered by ``ast.unparse``); code that
    does not parse comes back unchanged. A chat model rewrites the whole function, docstring
    included; the docstring is a copy of the instruction, so without this it would dominate
    ``log P(c | I)`` and every description would restate it. Completion-style candidates, as
    in the paper, have no docstring either.

    >>> print(strip_docstrings("def f(x):\\n    'Double.'\\n    return 2 * x  # twice"))
    def f(x):
        return 2 * x
    """
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return code
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            not isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            or not body
        ):
            continue
        first = body[0]
        is_constant = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
        if is_constant and isinstance(first.value.value, str):
            node.body = body[1:] or [ast.Pass()]
    return ast.unparse(tree)


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
        """The candidates as the models see them (code: renamed, docstrings stripped)."""
        if not self.code:
            return self.candidates
        return tuple(self._rename(strip_docstrings(c)) for c in self.candidates)


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


# --- evidence: the model calls, gathered once per component ---------------------------

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
        first = len(calls.trace.generations)
        started = time.perf_counter()
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
        records = calls.trace.generations[first:]
        evidence.cost[component] = ComponentCost(
            calls=len(records),
            prompt_tokens=sum(r.prompt_tokens for r in records),
            completion_tokens=sum(r.completion_tokens for r in records),
            worker_seconds=sum(r.seconds for r in records),
            wall_seconds=time.perf_counter() - started,
        )
    return evidence


# --- rerankers ---------------------------------------------------------------------------


class Reranker(abc.ABC):
    """Picks one candidate from the ``needs`` components of the evidence. ``rerank``
    refuses an empty set and makes no model call for one candidate (it is the pick)."""

    kind: ClassVar[str]
    needs: ClassVar[tuple[str, ...]]

    async def rerank(
        self, calls: CallRecorder, model: str, task: RerankTask, evidence: Evidence | None = None
    ) -> Reranking:
        """Rerank ``task``; pass one ``evidence`` to several rerankers to share their calls."""
        if not task.candidates:
            raise ValueError("nothing to rerank: no candidates")
        if len(task.candidates) == 1:
            return Reranking(best=0, scores=(0.0,), details={"skipped": "one candidate"})
        evidence = await gather_evidence(
            calls, model, task, self.needs, evidence=evidence, **self._gather_options()
        )
        return self.decide(evidence, len(task.candidates))

    def _gather_options(self) -> dict[str, Any]:
        return {}

    @abc.abstractmethod
    def decide(self, evidence: Evidence, n: int) -> Reranking:
        """The pick among ``n >= 2`` candidates from gathered ``evidence``."""


@dataclass(frozen=True)
class RandomReranker(Reranker):
    """A uniformly random candidate (no model call); ``seed`` makes it repeatable."""

    kind: ClassVar[str] = "random"
    needs: ClassVar[tuple[str, ...]] = ()
    seed: int | None = None

    def decide(self, evidence: Evidence, n: int) -> Reranking:
        best = random_choice(n, self.seed)
        scores = tuple(1.0 if i == best else 0.0 for i in range(n))
        return Reranking(best=best, scores=scores, details={"seed": self.seed})


@dataclass(frozen=True)
class CoderReranker(Reranker):
    """Coder: argmax ``log P(c | I_0)``; one score call."""

    kind: ClassVar[str] = "coder"
    needs: ClassVar[tuple[str, ...]] = ("coder_column",)

    def decide(self, evidence: Evidence, n: int) -> Reranking:
        assert evidence.coder_column is not None
        choice = coder_scores(evidence.coder_column)
        details = {"logp_c_given_i0": evidence.coder_column}
        return Reranking(best=choice.best, scores=choice.score, details=details)


@dataclass(frozen=True)
class CoderReviewerReranker(Reranker):
    """Coder-Reviewer: argmax ``log P(c | I_0) + log P(I_0 | c)``; 1 + n score calls."""

    kind: ClassVar[str] = "coder_reviewer"
    needs: ClassVar[tuple[str, ...]] = ("coder_column", "reviewer")

    def decide(self, evidence: Evidence, n: int) -> Reranking:
        assert evidence.coder_column is not None
        assert evidence.reviewer is not None
        choice = coder_reviewer_scores(evidence.coder_column, evidence.reviewer)
        details = {"logp_c_given_i0": evidence.coder_column, "logp_i0_given_c": evidence.reviewer}
        return Reranking(best=choice.best, scores=choice.score, details=details)


@dataclass(frozen=True)
class RSAReranker(Reranker):
    """CodeRSA: n greedy descriptions, then the n x (n + 1) listener matrix (n + 1 score
    calls), scored by ``rsa_scores``."""

    kind: ClassVar[str] = "rsa"
    needs: ClassVar[tuple[str, ...]] = ("coder_column", "describe", "listener_rest")
    describe_max_tokens: int = 96

    def _gather_options(self) -> dict[str, Any]:
        return {"describe_max_tokens": self.describe_max_tokens}

    def decide(self, evidence: Evidence, n: int) -> Reranking:
        L0 = evidence.L0
        result = rsa_scores(L0)
        details = {
            "descriptions": evidence.descriptions,
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
