"""Train SelectLLM's query router on collected labels (format: ``policies.selectllm.labels``).

Choices the paper leaves open:

* Data: one example per item (its question text); the target is the vector of per-model
  labels. A pair whose label is unknown (its call failed) is masked out of the loss and
  the metrics rather than counted as wrong.
* Split: by item id (all of an item's labels on one side), a ``random.Random(seed)``
  shuffle of the sorted ids cut into three disjoint parts (``split_items``): the first
  ``round(val_fraction * n)`` items validate, the next ``round(calibration_fraction * n)``
  calibrate (each at least one item), the rest train; by default 60/20/20. A split that
  would leave no item to train on is an error. The sizes are recorded in the metrics.
* Training: frozen embeddings, the MLP head trained with masked multi-label BCE, AdamW,
  mini-batches of 32, a fixed number of epochs (no early stopping: no split is spent on
  choosing the epoch). Initialisation, shuffling and dropout draw from a forked torch RNG
  seeded with ``seed``, so training is deterministic and leaves the global RNG alone.
* Calibration: Platt scaling per model (``PlattCalibration``), fitted on the calibration
  split only; or, with ``calibration_folds=K`` (for small label sets, where a 20% split
  leaves Platt a dozen points), cross-fitted: the non-validation items are cut into K
  folds, a head trained on the other folds scores each fold, Platt is fitted on all these
  out-of-fold logits, and the returned head is trained on every non-validation item (as
  scikit-learn's ``CalibratedClassifierCV(ensemble=False)``); the split then has no
  calibration part of its own (``ItemSplit.calibration`` lists the cross-fitted items).
  Where calibration leaves a model's calibrated probability varying by less than
  ``CONSTANT_CONFIDENCE_SPREAD`` across the calibration items (a slope near 0: the head's
  logits told calibration nothing about that model), a ``router.train.constant_confidence``
  warning names the model and its slope, and its metrics say ``constant_confidence``.
* Metrics: on the validation split alone (items used neither to fit the head nor the
  calibration), from the calibrated probabilities thresholded at 0.5 (what
  LABELLEDMAXCONF uses). F1 is None where it is undefined (no positive label and no
  positive prediction).

Example:
    >>> router, metrics = train_router(records, SentenceEmbedder.load(), seed=0)  # doctest: +SKIP
    >>> router.save("router/")  # doctest: +SKIP
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
import torch
from torch import nn

from policies.selectllm.labels import label_stats
from policies.selectllm.router import PlattCalibration, QueryRouter, RouterHead
from policies.selectllm.router_metrics import (
    CONSTANT_CONFIDENCE_SPREAD,
    ModelMetrics,
    RouterMetrics,
    confidence_spread,
    validation_metrics,
)
from workers.embedder import TextEmbedder

__all__ = [
    "CONSTANT_CONFIDENCE_SPREAD",
    "ItemSplit",
    "ModelMetrics",
    "RouterMetrics",
    "split_items",
    "train_router",
]

log = structlog.get_logger(__name__)

_BATCH = 32


@dataclass(frozen=True)
class ItemSplit:
    """Disjoint item ids (each sorted): the head fits on ``train``, the calibration on
    ``calibration``, and the metrics come from ``validation``."""

    train: tuple[str, ...]
    calibration: tuple[str, ...]
    validation: tuple[str, ...]


def split_items(
    ids: Sequence[str], *, seed: int, val_fraction: float, calibration_fraction: float
) -> ItemSplit:
    """Cut ``ids`` (deduplicated) into train / calibration / validation, seeded.

    Validation is the first ``max(1, round(val_fraction * n))`` ids of a
    ``random.Random(seed)`` shuffle of the sorted ids, calibration the next
    ``max(1, round(calibration_fraction * n))``, train the rest.
    """
    for name, fraction in (
        ("val_fraction", val_fraction),
        ("calibration_fraction", calibration_fraction),
    ):
        if not 0.0 < fraction < 1.0:
            raise ValueError(f"{name} must be in (0, 1), got {fraction}")
    if val_fraction + calibration_fraction >= 1.0:
        raise ValueError(
            f"val_fraction + calibration_fraction must be below 1 to leave items to train on, "
            f"got {val_fraction} + {calibration_fraction}"
        )
    shuffled = sorted(set(ids))
    random.Random(seed).shuffle(shuffled)
    n = len(shuffled)
    n_val = max(1, round(val_fraction * n))
    n_cal = max(1, round(calibration_fraction * n))
    if n - n_val - n_cal < 1:
        raise ValueError(
            f"{n} labelled item(s) leave no item to train on after {n_val} validation and "
            f"{n_cal} calibration item(s): need at least 3 items, or smaller "
            f"val_fraction / calibration_fraction"
        )
    return ItemSplit(
        train=tuple(sorted(shuffled[n_val + n_cal :])),
        calibration=tuple(sorted(shuffled[n_val : n_val + n_cal])),
        validation=tuple(sorted(shuffled[:n_val])),
    )


def train_router(
    records: Sequence[Mapping[str, Any]],
    embedder: TextEmbedder,
    *,
    seed: int = 0,
    val_fraction: float = 0.2,
    calibration_fraction: float = 0.2,
    epochs: int = 100,
    lr: float = 1e-3,
    hidden: int = 256,
    dropout: float = 0.1,
    weight_decay: float = 0.01,
    models: Sequence[str] | None = None,
    calibration_folds: int | None = None,
) -> tuple[QueryRouter, RouterMetrics]:
    """Fit the router head on label ``records``; returns the router and its metrics on
    held-out validation items.

    ``models`` fixes the pool and its order (default: the records' models, sorted).
    ``calibration_folds`` (>= 2) cross-fits the calibration instead of holding out
    ``calibration_fraction`` of the items (module docstring).
    """
    if epochs < 1 or hidden < 1 or lr <= 0:
        raise ValueError(f"need epochs >= 1, hidden >= 1, lr > 0 (got {epochs}, {hidden}, {lr})")
    if calibration_folds is not None and calibration_folds < 2:
        raise ValueError(f"calibration_folds must be at least 2, got {calibration_folds}")
    pool = tuple(models) if models is not None else tuple(sorted({r["model"] for r in records}))
    questions, labels, mask = _label_matrix(records, pool)
    ids = sorted(questions)
    embeddings = embedder.embed([questions[i] for i in ids])
    row = {item: index for index, item in enumerate(ids)}

    def rows(part: Sequence[str]) -> torch.Tensor:
        return torch.tensor([row[i] for i in part], dtype=torch.long)

    def fitted_head(part: torch.Tensor) -> RouterHead:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            head = RouterHead(embedder.dim, hidden, len(pool), dropout)
            _fit(head, embeddings[part], labels[part], mask[part], epochs, lr, weight_decay)
        head.eval()
        return head

    if calibration_folds is None:
        split = split_items(
            ids, seed=seed, val_fraction=val_fraction, calibration_fraction=calibration_fraction
        )
        cal = rows(split.calibration)
        head = fitted_head(rows(split.train))
        with torch.inference_mode():
            cal_logits = head(embeddings[cal])
    else:
        split = _crossfit_split(ids, seed=seed, val_fraction=val_fraction)
        cal = rows(split.calibration)
        cal_logits = torch.zeros(len(cal), len(pool))
        for fold in _folds(len(cal), calibration_folds):
            others = torch.ones(len(cal), dtype=torch.bool)
            others[fold] = False
            fold_head = fitted_head(cal[others])
            with torch.no_grad():
                cal_logits[fold] = fold_head(embeddings[cal[fold]])
        head = fitted_head(cal)
    val = rows(split.validation)
    with torch.inference_mode():
        val_logits = head(embeddings[val])
    calibration = PlattCalibration.fit(cal_logits, labels[cal], mask[cal], pool)
    spread = confidence_spread(calibration, cal_logits, pool)
    metrics = validation_metrics(
        torch.sigmoid(val_logits.double()),
        calibration.apply(val_logits, pool),
        labels[val],
        mask[val],
        pool,
        sizes=(len(split.train), len(split.calibration), len(split.validation)),
        calibration=calibration,
        spread=spread,
    )
    for model in metrics.constant_confidence:
        log.warning(
            "router.train.constant_confidence",
            model=model,
            slope=calibration.a[model],
            bias=calibration.b[model],
            spread=spread[model],
            calibration_items=len(split.calibration),
        )
    stats = label_stats(records, pool)
    router = QueryRouter(
        head,
        embedder,
        models=pool,
        latency={m: stats[m].mean_seconds for m in pool},
        tokens={m: stats[m].mean_completion_tokens for m in pool},
        calibration=calibration,
        metrics=metrics.to_dict(),
        training={
            "seed": seed,
            "val_fraction": val_fraction,
            "calibration_fraction": None if calibration_folds else calibration_fraction,
            "calibration_folds": calibration_folds,
            "epochs": epochs,
            "lr": lr,
            "hidden": hidden,
            "dropout": dropout,
            "weight_decay": weight_decay,
            "batch_size": _BATCH,
        },
    )
    return router, metrics


def _crossfit_split(ids: Sequence[str], *, seed: int, val_fraction: float) -> ItemSplit:
    """Validation as ``split_items`` cuts it; every other item both trains and (scored out
    of fold) calibrates."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    shuffled = sorted(set(ids))
    random.Random(seed).shuffle(shuffled)
    n_val = max(1, round(val_fraction * len(shuffled)))
    rest = tuple(sorted(shuffled[n_val:]))
    if len(rest) < 2:
        raise ValueError(
            f"{len(shuffled)} labelled item(s) leave {len(rest)} to cross-fit after "
            f"{n_val} validation item(s): need at least 2"
        )
    return ItemSplit(train=rest, calibration=rest, validation=tuple(sorted(shuffled[:n_val])))


def _folds(n: int, k: int) -> list[torch.Tensor]:
    """``min(k, n)`` folds of ``range(n)`` by position modulo the fold count: over rows in
    sorted id order, each fold takes every k-th id, so ids with a shared prefix (a data
    set) spread over all folds."""
    k = min(k, n)
    return [torch.arange(f, n, k) for f in range(k)]


def _label_matrix(
    records: Sequence[Mapping[str, Any]], pool: Sequence[str]
) -> tuple[dict[str, str], torch.Tensor, torch.Tensor]:
    """Questions by item id, and [items, models] label and known-label matrices (by sorted id)."""
    column = {m: j for j, m in enumerate(pool)}
    unknown = sorted({r["model"] for r in records} - set(column))
    if unknown:
        raise ValueError(f"records name model(s) {unknown} outside the pool {list(pool)}")
    usable = [r for r in records if r["label"] is not None]
    questions = {r["item"]: r["question"] for r in usable}
    row = {item: i for i, item in enumerate(sorted(questions))}
    labels = torch.zeros(len(row), len(pool))
    mask = torch.zeros(len(row), len(pool))
    for r in usable:
        labels[row[r["item"]], column[r["model"]]] = float(r["label"])
        mask[row[r["item"]], column[r["model"]]] = 1.0
    empty = [m for m in pool if mask[:, column[m]].sum() == 0]
    if empty:
        raise ValueError(f"no usable labels for model(s) {empty}")
    return questions, labels, mask


def _fit(
    head: RouterHead,
    x: torch.Tensor,
    y: torch.Tensor,
    mask: torch.Tensor,
    epochs: int,
    lr: float,
    weight_decay: float,
) -> None:
    optimizer = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    head.train()
    for _ in range(epochs):
        order = torch.randperm(len(x))
        for start in range(0, len(x), _BATCH):
            batch = order[start : start + _BATCH]
            loss = _masked_bce(head(x[batch]), y[batch], mask[batch])
            optimizer.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()


def _masked_bce(logits: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    losses = nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none")
    return (losses * mask).sum() / mask.sum().clamp(min=1.0)
