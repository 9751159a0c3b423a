"""Sampling from the generator and judging what it wrote, exactly as evaluation reads answers:
the correct reference solutions of an item (step 1) and the accuracy of rollouts that
continue a reply from a prefix (step 3)."""

from __future__ import annotations

import asyncio

from orchestrator.extraction import extract_answer
from system2.evaluation.datasets import EvalItem, score_item
from workers.base import GenerateRequest, Prompt, SamplingParams, Worker

from .settings import ExplorationSettings, derived_seed

__all__ = ["SamplingTally", "gold_rationale", "judge", "references", "rollout_accuracy"]


class SamplingTally:
    """Rollouts and generated tokens of one item."""

    def __init__(self) -> None:
        self.rollouts = 0
        self.tokens = 0


def judge(item: EvalItem, text: str) -> bool:
    """Whether the answer read from ``text`` (as evaluation reads it) is right."""
    q = item.query
    answer = extract_answer(text, q.task, choices=q.choices, entry_point=q.entry_point).answer
    return score_item(item, answer).correct


async def references(
    item: EvalItem,
    prompt: Prompt,
    worker: Worker,
    settings: ExplorationSettings,
    tally: SamplingTally,
) -> list[tuple[str, str]]:
    """(source, text) of up to ``settings.references`` distinct correct solutions."""
    greedy = GenerateRequest(
        prompt=prompt, params=SamplingParams(max_tokens=settings.max_tokens), request_id=item.id
    )
    calls = [worker.generate(greedy)]
    if settings.reference_samples:
        sampled = SamplingParams(
            n=settings.reference_samples,
            temperature=settings.temperature,
            top_p=settings.top_p,
            max_tokens=settings.max_tokens,
            seed=derived_seed(settings, item.id, "references"),
        )
        calls.append(worker.generate(GenerateRequest(prompt=prompt, params=sampled)))
    results = await asyncio.gather(*calls)
    found: list[tuple[str, str]] = []
    for source, result in zip(("greedy", "sample"), results, strict=False):
        for completion in result.completions:
            tally.tokens += len(completion.token_ids)
            text = completion.text
            if (
                len(found) < settings.references
                and text.strip()
                and all(text != t for _, t in found)
                and await asyncio.to_thread(judge, item, text)
            ):
                found.append((source, text))
    if not found and settings.gold_rationale:
        gold = gold_rationale(item)
        if gold is not None and await asyncio.to_thread(judge, item, gold):
            found.append(("gold", gold))
    return found


def gold_rationale(item: EvalItem) -> str | None:
    """The task's worked solution (reasoning-gym's ``answer_cot``), if it has one."""
    entry = item.metadata.get("rg_entry")
    meta = entry.get("metadata") if isinstance(entry, dict) else None
    text = meta.get("answer_cot") if isinstance(meta, dict) else None
    return text if isinstance(text, str) and text.strip() else None


async def rollout_accuracy(
    item: EvalItem,
    prompt: Prompt,
    worker: Worker,
    settings: ExplorationSettings,
    prefix: str,
    before: str,
    tally: SamplingTally,
) -> float:
    """The share of rollouts from ``prefix`` that reach a right answer; the seed depends on
    the item and the prefix only, so a rerun draws the same rollouts."""
    if prefix == before:  # the token adds no text (EOS or another special token): stop here
        return 1.0 if await asyncio.to_thread(judge, item, prefix) else 0.0
    params = SamplingParams(
        n=settings.rollouts,
        temperature=settings.temperature,
        top_p=settings.top_p,
        max_tokens=settings.max_tokens,
        seed=derived_seed(settings, item.id, prefix),
    )
    result = await worker.generate(
        GenerateRequest(prompt=prompt, params=params, assistant_prefix=prefix)
    )
    tally.rollouts += len(result.completions)
    tally.tokens += sum(len(c.token_ids) for c in result.completions)
    right = 0
    for completion in result.completions:
        right += await asyncio.to_thread(judge, item, prefix + completion.text)
    return right / len(result.completions)
