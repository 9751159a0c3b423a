"""The rerankers' model calls, through the call recorder: the speaker's descriptions, the
literal listener's log-prob matrix and the reviewer's log-probs (``prompts`` has the prompts).

Identical candidates (or instructions) share one call; calls are deterministic (greedy,
scoring), so the numbers are what separate calls give.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from orchestrator.recorder import CallRecorder
from orchestrator.rerank.prompts import (
    continuation,
    first_line,
    listener_prompt,
    reviewer_prompt,
    speaker_prompt,
)
from orchestrator.rerank.task import RerankTask
from workers.base import GenerateRequest, SamplingParams, ScoreRequest

__all__ = ["describe_candidates", "listener_matrix", "reviewer_logprobs"]


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
    said = {c: first_line(r.completions[0].text) for c, r in zip(unique, results, strict=True)}
    return [said[c] for c in shown]


async def listener_matrix(
    calls: CallRecorder, model: str, task: RerankTask, instructions: Sequence[str]
) -> list[list[float]]:
    """``M[i][j] = log P(candidate i | instructions[j])``: one score call per instruction,
    every candidate a continuation of it."""
    continuations = [continuation(task, c) for c in task.shown_candidates]
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
