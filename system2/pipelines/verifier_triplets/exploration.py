"""Exploring one reference solution: score it for its top tokens, pick the informative
positions, roll out the gold token and each alternative there, and label the alternatives
(steps 2-4 of the package doc)."""

from __future__ import annotations

import asyncio
from typing import Any

from system2.evaluation.datasets import EvalItem
from workers.base import Prompt, ScoreRequest, Worker

from .labelling import is_negative, may_have_negatives
from .positions import Position, informative_positions
from .rollouts import SamplingTally, rollout_accuracy
from .settings import ExplorationSettings

__all__ = ["explore_reference"]

_REPLACEMENT = "\ufffd"


async def explore_reference(
    item: EvalItem,
    prompt: Prompt,
    worker: Worker,
    settings: ExplorationSettings,
    text: str,
    tally: SamplingTally,
) -> dict[str, Any]:
    """The reference's ``token_ids`` as scored and its explored ``positions``."""
    request = ScoreRequest(
        prompt=prompt, continuations=(text,), top_logprobs=settings.alternatives + 1
    )
    scored = (await worker.score(request)).scores[0]
    if len(scored.top_alternatives) != len(scored.token_ids) or not scored.token_ids:
        raise ValueError("the worker returned no top alternatives for the reference's tokens")
    ids = list(scored.token_ids)
    chosen = informative_positions(scored, settings)
    explored = await asyncio.gather(
        *(_explore_position(item, prompt, worker, settings, text, ids, p, tally) for p in chosen)
    )
    return {"token_ids": ids, "positions": [e for e in explored if e is not None]}


async def _explore_position(
    item: EvalItem,
    prompt: Prompt,
    worker: Worker,
    settings: ExplorationSettings,
    text: str,
    ids: list[int],
    position: Position,
    tally: SamplingTally,
) -> dict[str, Any] | None:
    t = position.index
    before = await worker.decode_tokens(ids[:t])
    gold_text = await worker.decode_tokens([*ids[:t], position.gold_id])
    if _broken(gold_text, text):
        return None  # the gold token ends inside a character: no text prefix to roll out
    alternatives = []
    for token, prob in position.alternatives:
        prefix = await worker.decode_tokens([*ids[:t], token])
        if prefix != gold_text and not _broken(prefix, text):
            alternatives.append((token, prob, prefix))
    if not alternatives:
        return None
    gold_accuracy = await rollout_accuracy(item, prompt, worker, settings, gold_text, before, tally)
    accuracies: list[float | None] = [None] * len(alternatives)
    if may_have_negatives(gold_accuracy, settings.margin):
        accuracies = list(
            await asyncio.gather(
                *(
                    rollout_accuracy(item, prompt, worker, settings, prefix, before, tally)
                    for _, _, prefix in alternatives
                )
            )
        )
    return {
        "position": t,
        "gold_id": position.gold_id,
        "gold_prob": position.gold_prob,
        "gold_accuracy": gold_accuracy,
        "alternatives": [
            {
                "token_id": token,
                "prob": prob,
                "accuracy": accuracy,
                "negative": is_negative(accuracy, gold_accuracy, settings.margin),
            }
            for (token, prob, _), accuracy in zip(alternatives, accuracies, strict=True)
        ],
    }


def _broken(prefix: str, reference: str) -> bool:
    """Whether decoding ``prefix`` produced a partial character (more U+FFFD than the
    reference text holds), so it cannot be passed on as text."""
    return prefix.count(_REPLACEMENT) > reference.count(_REPLACEMENT)
