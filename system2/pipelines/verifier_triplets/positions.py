"""Where a reference is worth exploring (step 2): the informative positions of its tokens,
each with the alternatives decoding could have picked there."""

from __future__ import annotations

import math
from dataclasses import dataclass

from workers.base import ContinuationScore

from .settings import ExplorationSettings

__all__ = ["Position", "informative_positions"]


@dataclass(frozen=True)
class Position:
    """A position of the reference's tokens, its gold token and the alternatives to try."""

    index: int
    gold_id: int
    gold_prob: float
    alternatives: tuple[tuple[int, float], ...]  # (token id, probability)


def informative_positions(
    scored: ContinuationScore, settings: ExplorationSettings
) -> list[Position]:
    """The positions to explore, in position order (see the package doc, step 2)."""
    found = []
    for t, (gold, logprob) in enumerate(zip(scored.token_ids, scored.token_logprobs, strict=True)):
        gold_prob = math.exp(logprob)
        top = scored.top_alternatives[t] if t < len(scored.top_alternatives) else ()
        if gold_prob >= settings.gold_prob_threshold or not top:
            continue
        best = max(math.exp(a.logprob) for a in top)
        if settings.plausible_gold and gold_prob < settings.alpha * max(best, gold_prob):
            continue
        alternatives = tuple(
            (a.token_id, math.exp(a.logprob))
            for a in top
            if a.token_id != gold and math.exp(a.logprob) >= settings.alpha * best
        )[: settings.alternatives]
        if alternatives:
            found.append(Position(t, gold, gold_prob, alternatives))
    chosen = sorted(found, key=lambda p: (p.gold_prob, p.index))[: settings.positions]
    return sorted(chosen, key=lambda p: p.index)
