"""SelectLLM's selection rules (arXiv 2408.08545), as pure functions over confidences.

The paper names MAXCONF, LABELLEDMAXCONF and WEIGHTEDMAXCONF but leaves their exact rules
open; these are ours:

* Ranking: models by confidence, highest first; equal confidences go to the lower-latency
  model, then to the name (so every rule is deterministic).
* MAXCONF: the ``k`` top-ranked models; with ``threshold``, every model whose confidence
  is >= threshold instead (at least the top one).
* LABELLEDMAXCONF: the models the classifier labels positive (confidence > ``threshold``,
  0.5 by default), ranked, at most ``max_models``; if none is positive, the single most
  confident model.
* WEIGHTEDMAXCONF: the LABELLEDMAXCONF selection, and each selected model's votes weigh
  its confidence: answer = argmax_a sum_m conf_m * votes_m(a). Answers tied on weight go
  to the answer of the better-ranked (lower-latency on equal confidence) model.

Example:
    >>> max_conf({"a": 0.2, "b": 0.9, "c": 0.9}, {"a": 1.0, "b": 3.0, "c": 2.0}, k=2).models
    ('c', 'b')
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["Selection", "labelled_max_conf", "max_conf", "rank_models", "weighted_max_conf"]


@dataclass(frozen=True)
class Selection:
    """Models to run in preference order, optional vote weights, and why."""

    models: tuple[str, ...]
    weights: Mapping[str, float] = field(default_factory=dict)
    reason: str = ""


def rank_models(confidences: Mapping[str, float], latency: Mapping[str, float]) -> list[str]:
    """Models by confidence (high first), then latency (low first), then name."""
    if not confidences:
        raise ValueError("no model confidences to select from")
    missing = sorted(set(confidences) - set(latency))
    if missing:
        raise ValueError(f"no latency known for model(s) {missing}")
    return sorted(confidences, key=lambda m: (-confidences[m], latency[m], m))


def max_conf(
    confidences: Mapping[str, float],
    latency: Mapping[str, float],
    *,
    k: int = 1,
    threshold: float | None = None,
) -> Selection:
    """MAXCONF: the top ``k`` models, or all with confidence >= ``threshold``."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    ranked = rank_models(confidences, latency)
    if threshold is None:
        chosen = ranked[:k]
        reason = f"MAXCONF: top {k} by confidence"
    else:
        chosen = [m for m in ranked if confidences[m] >= threshold] or ranked[:1]
        reason = f"MAXCONF: confidence >= {threshold:g}"
    return Selection(tuple(chosen), reason=reason)


def labelled_max_conf(
    confidences: Mapping[str, float],
    latency: Mapping[str, float],
    *,
    threshold: float = 0.5,
    max_models: int | None = None,
) -> Selection:
    """LABELLEDMAXCONF: the positively labelled models, else the most confident one."""
    ranked = rank_models(confidences, latency)
    positive = [m for m in ranked if confidences[m] > threshold][:max_models]
    if positive:
        return Selection(tuple(positive), reason=f"LABELLEDMAXCONF: labelled > {threshold:g}")
    return Selection(
        tuple(ranked[:1]), reason="LABELLEDMAXCONF: none labelled positive, most confident"
    )


def weighted_max_conf(
    confidences: Mapping[str, float],
    latency: Mapping[str, float],
    *,
    threshold: float = 0.5,
    max_models: int | None = None,
) -> Selection:
    """WEIGHTEDMAXCONF: LABELLEDMAXCONF's models, each voting with its confidence."""
    chosen = labelled_max_conf(
        confidences, latency, threshold=threshold, max_models=max_models
    ).models
    weights = {m: float(confidences[m]) for m in chosen}
    return Selection(chosen, weights=weights, reason="WEIGHTEDMAXCONF: confidence-weighted vote")
