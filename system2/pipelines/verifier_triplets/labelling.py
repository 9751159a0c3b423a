"""The label (step 4): an alternative is a negative when its rollouts' accuracy falls at least
``margin`` below the gold token's; the triplets are the negatives of explored positions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["is_negative", "may_have_negatives", "triplets"]

_EPS = 1e-9  # accuracies are multiples of 1 / rollouts; compare them with this slack


def may_have_negatives(gold_accuracy: float, margin: float) -> bool:
    """Whether any alternative can be a negative: not when the gold token's accuracy is
    itself below ``margin`` (so its alternatives need no rollouts)."""
    return gold_accuracy - margin >= -_EPS


def is_negative(accuracy: float | None, gold_accuracy: float, margin: float) -> bool:
    """Whether an alternative with rollout ``accuracy`` (None: not rolled out) is a
    negative: accuracy(v) <= accuracy(x_t) - ``margin``."""
    return accuracy is not None and accuracy <= gold_accuracy - margin + _EPS


def triplets(positions: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One (position, gold, negative) triplet per negative alternative of the explored
    ``positions`` (as ``explore_reference`` records them)."""
    return [
        {
            "position": p["position"],
            "gold_id": p["gold_id"],
            "negative_id": a["token_id"],
            "gold_accuracy": p["gold_accuracy"],
            "negative_accuracy": a["accuracy"],
        }
        for p in positions
        for a in p["alternatives"]
        if a["negative"]
    ]
