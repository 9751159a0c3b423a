"""The query router's validation metrics (``policies.selectllm.train``): per model and
micro-averaged over (item, model) labels, from calibrated probabilities thresholded at 0.5,
with each model's calibration slope and how far its calibrated confidence moves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch

from policies.selectllm.router import PlattCalibration

__all__ = [
    "CONSTANT_CONFIDENCE_SPREAD",
    "ModelMetrics",
    "RouterMetrics",
    "confidence_spread",
    "validation_metrics",
]

CONSTANT_CONFIDENCE_SPREAD = 0.01
"""A calibrated probability that varies by less than this across the calibration items
counts as constant: the router cannot tell that model's good queries from its bad ones."""


@dataclass(frozen=True)
class ModelMetrics:
    """One model's validation metrics (labels known for ``n`` validation items) and its
    calibration: the Platt slope and how far the calibrated probability moves (max - min)
    across the calibration items."""

    n: int
    positive_rate: float
    accuracy: float
    precision: float | None
    recall: float | None
    f1: float | None
    calibration_slope: float
    confidence_spread: float
    constant_confidence: bool


@dataclass(frozen=True)
class RouterMetrics:
    """Validation metrics per model and over all (item, model) labels (micro), with the
    number of items in each split."""

    train_items: int
    calibration_items: int
    val_items: int
    per_model: dict[str, ModelMetrics]
    micro_accuracy: float
    micro_f1: float | None
    nll_raw: float
    nll_calibrated: float

    @property
    def constant_confidence(self) -> list[str]:
        """The models whose calibrated confidence is (nearly) constant."""
        return [m for m, metrics in self.per_model.items() if metrics.constant_confidence]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def confidence_spread(
    calibration: PlattCalibration, logits: torch.Tensor, pool: Sequence[str]
) -> dict[str, float]:
    """Per model, max - min of its calibrated probability over ``logits`` (0 for < 2 rows)."""
    probs = calibration.apply(logits, pool)
    if len(probs) == 0:
        return dict.fromkeys(pool, 0.0)
    spread = probs.max(dim=0).values - probs.min(dim=0).values
    return {m: float(spread[j]) for j, m in enumerate(pool)}


def validation_metrics(
    raw: torch.Tensor,
    calibrated: torch.Tensor,
    y: torch.Tensor,
    mask: torch.Tensor,
    pool: Sequence[str],
    *,
    sizes: tuple[int, int, int],
    calibration: PlattCalibration,
    spread: Mapping[str, float],
) -> RouterMetrics:
    """Metrics of the validation rows (``raw`` / ``calibrated`` probabilities, labels ``y``);
    ``sizes``: the train, calibration and validation item counts."""
    known = mask.bool()
    predicted = calibrated > 0.5
    truth = y.bool()
    per_model = {
        m: ModelMetrics(
            **_counts(predicted[:, j], truth[:, j], known[:, j]),
            calibration_slope=calibration.a[m],
            confidence_spread=spread[m],
            constant_confidence=spread[m] < CONSTANT_CONFIDENCE_SPREAD,
        )
        for j, m in enumerate(pool)
    }
    micro = _counts(predicted.flatten(), truth.flatten(), known.flatten())
    return RouterMetrics(
        train_items=sizes[0],
        calibration_items=sizes[1],
        val_items=sizes[2],
        per_model=per_model,
        micro_accuracy=micro["accuracy"],
        micro_f1=micro["f1"],
        nll_raw=_nll(raw, y, known),
        nll_calibrated=_nll(calibrated, y, known),
    )


def _counts(predicted: torch.Tensor, truth: torch.Tensor, known: torch.Tensor) -> dict[str, Any]:
    """``n``, ``positive_rate``, ``accuracy``, ``precision``, ``recall`` and ``f1``."""
    p, t = predicted[known], truth[known]
    n = int(known.sum())
    tp, fp, fn = int((p & t).sum()), int((p & ~t).sum()), int((~p & t).sum())
    return {
        "n": n,
        "positive_rate": float(t.sum()) / n if n else 0.0,
        "accuracy": float((p == t).sum()) / n if n else 0.0,
        "precision": tp / (tp + fp) if tp + fp else None,
        "recall": tp / (tp + fn) if tp + fn else None,
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None,
    }


def _nll(probs: torch.Tensor, y: torch.Tensor, known: torch.Tensor) -> float:
    """Mean negative log-likelihood of the known labels."""
    p = probs.double().clamp(1e-6, 1 - 1e-6)[known]
    t = y.double()[known]
    if p.numel() == 0:
        return float("nan")
    return float(-(t * p.log() + (1 - t) * (1 - p).log()).mean())
