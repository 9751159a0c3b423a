"""Step-level search machinery shared by ``step_beam`` and ``metastable``.

A path is the assistant's reply built step by step: a step is one line (calls stop at
``"\\n"``), and the next call continues the reply through ``assistant_prefix``. A path is
finished when a step states the final answer ("the answer is", ``####``, ``\\boxed{``),
when a call returns no token (the model ended its reply), or when it reaches ``max_steps``
or ``max_path_tokens``. A rollout finishes a path in one call (no stop string).

A path's value is the geometric mean of its tokens' probabilities, ``exp(logprob /
tokens)``: the model's own confidence in it (a self-evaluation). With ``value: verifier``
the step verifier scores every new path's steps instead and the value is ``StepValue``'s
reading of them: the aggregate (min by default) of the step scores, passed through a
sigmoid when they are logits, so it lies in [0, 1] either way. Finished paths vote with
their values as weights.

Token budget: every strategy here counts the completion tokens of its calls in a
``TokenBudget`` (the trace keeps the exact count). ``step_beam`` starts a round while some
budget is left, so its last round may overshoot by at most its own tokens; ``metastable``
starts one only when the round's expected cost fits in what is left.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from orchestrator.aggregation.verifier_vote import PathAggregate, path_score
from orchestrator.aggregation.voting import weighted_vote
from orchestrator.extraction import extract_answer
from orchestrator.strategies.base import StrategyContext, StrategyResult
from orchestrator.types import Candidate, VoteRecord
from workers.base import Completion, GenerateRequest, SamplingParams

if TYPE_CHECKING:
    from workers.base import StepScale

__all__ = [
    "ANSWER_CUE",
    "Path",
    "StepSampler",
    "StepSettings",
    "StepValue",
    "TokenBudget",
    "extend_one_step",
    "path_candidates",
    "roll_out",
    "search_result",
    "split_steps",
    "value_rule",
    "value_weighted_vote",
    "verify_paths",
]

ANSWER_CUE = re.compile(r"####|\\boxed\s*\{|\bfinal\s+answer\b|\banswer\s+is\b", re.IGNORECASE)
STEP_STOP = "\n"


def split_steps(text: str) -> tuple[str, ...]:
    """The non-empty lines of ``text``, stripped: the steps of a reply."""
    return tuple(line.strip() for line in text.splitlines() if line.strip())


@dataclass(frozen=True)
class Path:
    """A (partial or finished) reply: its steps, exact text so far, tokens and log-prob."""

    steps: tuple[str, ...] = ()
    text: str = ""
    tokens: int = 0
    logprob: float = 0.0
    finished: bool = False
    answer: str | None = None
    finish_reason: str = "stop"
    step_scores: tuple[float, ...] | None = None
    verified: float | None = None

    @property
    def value(self) -> float:
        """The verifier's value when the path was verified; else the geometric-mean token
        probability, in (0, 1] (0.5 for an empty path)."""
        if self.verified is not None:
            return self.verified
        return math.exp(self.logprob / self.tokens) if self.tokens else 0.5

    def prefix_after(self, i: int) -> Path:
        """The partial path made of this path's first ``i`` steps (token counts are the
        whole path's share by steps, an estimate used only for ordering; step scores are the
        first ``i``, as a step's score depends only on the steps before it)."""
        steps = self.steps[:i]
        share = i / len(self.steps) if self.steps else 0.0
        return Path(
            steps=steps,
            text="".join(s + "\n" for s in steps),
            tokens=round(self.tokens * share),
            logprob=self.logprob * share,
            step_scores=None if self.step_scores is None else self.step_scores[:i],
        )


@dataclass(frozen=True)
class StepValue:
    """A path's value from its step scores: the ``aggregate`` of them, through a sigmoid
    when the verifier's ``scale`` is logits; 0.5 for a path without steps."""

    aggregate: PathAggregate
    scale: StepScale

    def __call__(self, step_scores: Sequence[float]) -> float:
        score = path_score(step_scores, self.aggregate)
        if score is None:
            return 0.5
        return 1.0 / (1.0 + math.exp(-score)) if self.scale == "logit" else score


def value_rule(ctx: StrategyContext, value: str, aggregate: PathAggregate) -> StepValue | None:
    """The ``StepValue`` for ``value: verifier`` (needs the step verifier); None for the
    model's own confidence."""
    if value != "verifier":
        return None
    return StepValue(aggregate, ctx.calls.require_step_verifier().scale)


async def verify_paths(
    ctx: StrategyContext, paths: Sequence[Path], rule: StepValue | None
) -> list[Path]:
    """``paths`` with their step scores and verifier value (one step-verifier call for all);
    unchanged when ``rule`` is None."""
    if rule is None or not paths:
        return list(paths)
    scores = await ctx.calls.score_steps(ctx.prompt, [p.steps for p in paths])
    return [
        replace(p, step_scores=tuple(s), verified=rule(s))
        for p, s in zip(paths, scores, strict=True)
    ]


@dataclass
class TokenBudget:
    """Generated tokens allowed and spent."""

    limit: int
    spent: int = 0

    @property
    def left(self) -> bool:
        return self.spent < self.limit

    def charge(self, completions: Sequence[Completion]) -> None:
        self.spent += sum(len(c.token_ids) for c in completions)


@dataclass(frozen=True)
class StepSettings:
    """Sampling settings for steps and rollouts."""

    temperature: float = 0.7
    top_p: float = 0.95
    top_k: int = 0
    step_max_tokens: int = 96
    max_steps: int = 24
    max_path_tokens: int = 512
    seed: int | None = None


@dataclass
class StepSampler:
    """Hands out ``SamplingParams`` under ``settings``; call i is seeded seed + 1000 * i
    (its samples seed + 1000 * i + j), so no two calls of one query share a seed."""

    settings: StepSettings
    calls: int = 0

    def params(self, n: int, max_tokens: int, stop: tuple[str, ...]) -> SamplingParams:
        seed = None
        if self.settings.seed is not None:
            seed = self.settings.seed + 1000 * self.calls
        self.calls += 1
        return SamplingParams(
            n=n,
            temperature=self.settings.temperature,
            top_p=self.settings.top_p,
            top_k=self.settings.top_k,
            max_tokens=max_tokens,
            stop=stop,
            seed=seed,
        )


def _finish(ctx: StrategyContext, path: Path, reason: str = "stop") -> Path:
    extraction = extract_answer(
        path.text, ctx.query.task, choices=ctx.query.choices, entry_point=ctx.query.entry_point
    )
    return replace(path, finished=True, answer=extraction.answer, finish_reason=reason)


def _child(ctx: StrategyContext, parent: Path, c: Completion, settings: StepSettings) -> Path:
    step = c.text.strip()
    tokens = parent.tokens + len(c.token_ids)
    child = Path(
        steps=(*parent.steps, step) if step else parent.steps,
        text=parent.text + c.text + ("\n" if c.finish_reason == "stop" else ""),
        tokens=tokens,
        logprob=parent.logprob + sum(c.logprobs),
    )
    if not c.token_ids or ANSWER_CUE.search(step):
        return _finish(ctx, child)
    if len(child.steps) >= settings.max_steps or tokens >= settings.max_path_tokens:
        return _finish(ctx, child, "length")
    return child


async def extend_one_step(
    ctx: StrategyContext, model: str, paths: Sequence[Path], k: int, sampler: StepSampler
) -> tuple[list[list[Path]], list[Completion]]:
    """``k`` sampled next steps for each unfinished path (one call per path, all at once,
    so the worker batches them). Returns the children per path and every completion."""
    requests = [
        GenerateRequest(
            prompt=ctx.prompt,
            params=sampler.params(k, sampler.settings.step_max_tokens, (STEP_STOP,)),
            request_id=ctx.query.id,
            assistant_prefix=p.text,
        )
        for p in paths
    ]
    results = await asyncio.gather(*(ctx.calls.generate(model, r) for r in requests))
    children = [
        [_child(ctx, p, c, sampler.settings) for c in result.completions]
        for p, result in zip(paths, results, strict=True)
    ]
    return children, [c for r in results for c in r.completions]


async def roll_out(
    ctx: StrategyContext, model: str, paths: Sequence[Path], sampler: StepSampler
) -> tuple[list[Path], list[Completion]]:
    """Finish each path with one sampled continuation (all calls at once)."""
    requests = [
        GenerateRequest(
            prompt=ctx.prompt,
            params=sampler.params(1, max(1, sampler.settings.max_path_tokens - p.tokens), ()),
            request_id=ctx.query.id,
            assistant_prefix=p.text,
        )
        for p in paths
    ]
    results = await asyncio.gather(*(ctx.calls.generate(model, r) for r in requests))
    finished = []
    for p, result in zip(paths, results, strict=True):
        (c,) = result.completions
        whole = Path(
            steps=(*p.steps, *split_steps(c.text)),
            text=p.text + c.text,
            tokens=p.tokens + len(c.token_ids),
            logprob=p.logprob + sum(c.logprobs),
        )
        finished.append(_finish(ctx, whole, c.finish_reason))
    return finished, [r.completions[0] for r in results]


def value_weighted_vote(paths: Sequence[Path]) -> tuple[Path | None, VoteRecord | None]:
    """The winning answer by summed path values, and the best-valued path giving it."""
    answered = [p for p in paths if p.answer is not None]
    if not answered:
        return None, None
    result = weighted_vote([p.answer for p in answered], [p.value for p in answered])
    winner = max((p for p in answered if p.answer == result.winner), key=lambda p: p.value)
    return winner, result.to_record()


def search_result(
    ctx: StrategyContext, model: str, paths: Sequence[Path], extra: dict[str, Any]
) -> StrategyResult:
    """The finished ``paths`` as trace candidates, their value-weighted vote, and the
    best-valued path giving the winning answer as the pick."""
    candidates = path_candidates(ctx, model, paths)
    winner, vote = value_weighted_vote(paths)
    chosen = candidates[list(paths).index(winner)] if winner is not None else None
    return StrategyResult(
        answer=winner.answer if winner else None,
        chosen=chosen,
        candidates=candidates,
        vote=vote,
        extra=extra,
    )


def path_candidates(ctx: StrategyContext, model: str, paths: Sequence[Path]) -> list[Candidate]:
    """Finished paths as trace candidates (one per path)."""
    made = [
        Candidate(
            model=model,
            text=p.text,
            answer=p.answer,
            completion_tokens=p.tokens,
            total_logprob=p.logprob,
            finish_reason="length" if p.finish_reason == "length" else "stop",
            extraction_error=None if p.answer is not None else "no answer in the path",
        )
        for p in paths
    ]
    ctx.calls.record_candidates(made)
    return made
