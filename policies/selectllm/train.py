"""Train SelectLLM's query router on collected labels (format: ``policies.selectllm.labels``).

Choices the paper leaves open:

* Data: one example per item (its question text); the target is the vector of per-model
  labels. A pair whose label is unknown (its call failed) is masked out of the loss and
  the metrics rather than counted as wrong.
* Split: by item id (all of an item's labels on one side), a ``random.Random(seed)``
  shuffle of the sorted ids; ``round(val_fraction * n)`` items (at least one) validate.
* Training: frozen embeddings, the MLP head trained with masked multi-label BCE, AdamW,
  mini-batches of 32, a fixed number of epochs (no early stopping: the validation split
  is already used for calibration and metrics). Initialisation, shuffling and dropout draw
  from a forked torch RNG seeded with ``seed``, so training is deterministic and leaves
  the global RNG alone.
* Calibration: Platt scaling per model, fitted on the validation split (``QueryRouter``).
* Metrics: on the validation split, from the calibrated probabilities thresholded at 0.5
  (what LABELLEDMAXCONF uses). So calibration and metrics share the split: with two
  parameters per model the optimism is small, but it is there. F1 is None where it is
  undefined (no positive label and no positive prediction).

Example:
    >>> router, metrics = train_router(records, SentenceEmbedder.load(), seed=0)  # doctest: +SKIP
    >>> router.save("router/")  # doctest: +SKIP
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from policies.selectllm.labels import label_stats
from policies.selectllm.router import PlattCalibration, QueryRouter, RouterHead
from workers.embedder import TextEmbedder

__all__ = ["ModelMetrics", "RouterMetrics", "train_router"]

_BATCH = 32


@dataclass(frozen=True)
class ModelMetrics:
    """One model's validation metrics (labels known for ``n`` items)."""

    n: int
    positive_rate: float
    accuracy: float
    precision: float | None
    recall: float | None
    f1: float | None


@dataclass(frozen=True)
class RouterMetrics:
    """Validation metrics per model and over all (item, model) labels (micro)."""

    train_items: int
    val_items: int
    per_model: dict[str, ModelMetrics]
    micro_accuracy: float
    micro_f1: float | None
    nll_raw: float
    nll_calibrated: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def train_router(
    records: Sequence[Mapping[str, Any]],
    embedder: TextEmbedder,
    *,
    seed: int = 0,
    val_fraction: float = 0.2,
    epochs: int = 100,
    lr: float = 1e-3,
    hidden: int = 256,
    dropout: float = 0.1,
    weight_decay: float = 0.01,
    models: Sequence[str] | None = None,
) -> tuple[QueryRouter, RouterMetrics]:
    """Fit the router head on label ``records``; returns the router and validation metrics.

    ``models`` fixes the pool and its order (default: the records' models, sorted).
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    if epochs < 1 or hidden < 1 or lr <= 0:
        raise ValueError(f"need epochs >= 1, hidden >= 1, lr > 0 (got {epochs}, {hidden}, {lr})")
    pool = tuple(models) if models is not None else tuple(sorted({r["model"] for r in records}))
    questions, labels, mask = _label_matrix(records, pool)
    ids = sorted(questions)
    if len(ids) < 2:
        raise ValueError(f"need labels for at least 2 items to split, got {len(ids)}")
    shuffled = ids.copy()
    random.Random(seed).shuffle(shuffled)
    n_val = min(max(1, round(val_fraction * len(ids))), len(ids) - 1)
    val_ids, train_ids = sorted(shuffled[:n_val]), sorted(shuffled[n_val:])

    embeddings = embedder.embed([questions[i] for i in ids])
    row = {item: index for index, item in enumerate(ids)}
    train = torch.tensor([row[i] for i in train_ids])
    val = torch.tensor([row[i] for i in val_ids])

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        head = RouterHead(embedder.dim, hidden, len(pool), dropout)
        _fit(head, embeddings[train], labels[train], mask[train], epochs, lr, weight_decay)
    head.eval()
    with torch.inference_mode():
        val_logits = head(embeddings[val])
    calibration = PlattCalibration.fit(val_logits, labels[val], mask[val], pool)
    probs = calibration.apply(val_logits, pool)
    metrics = _metrics(
        torch.sigmoid(val_logits.double()), probs, labels[val], mask[val], pool, len(train_ids)
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
            "epochs": epochs,
            "lr": lr,
            "hidden": hidden,
            "dropout": dropout,
            "weight_decay": weight_decay,
            "batch_size": _BATCH,
        },
    )
    return router, metrics


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


def _metrics(
    raw: torch.Tensor,
    calibrated: torch.Tensor,
    y: torch.Tensor,
    mask: torch.Tensor,
    pool: Sequence[str],
    train_items: int,
) -> RouterMetrics:
    known = mask.bool()
    predicted = calibrated > 0.5
    truth = y.bool()
    per_model = {m: _counts(predicted[:, j], truth[:, j], known[:, j]) for j, m in enumerate(pool)}
    micro = _counts(predicted.flatten(), truth.flatten(), known.flatten())
    return RouterMetrics(
        train_items=train_items,
        val_items=len(y),
        per_model=per_model,
        micro_accuracy=micro.accuracy,
        micro_f1=micro.f1,
        nll_raw=_nll(raw, y, known),
        nll_calibrated=_nll(calibrated, y, known),
    )


def _counts(predicted: torch.Tensor, truth: torch.Tensor, known: torch.Tensor) -> ModelMetrics:
    p, t = predicted[known], truth[known]
    n = int(known.sum())
    tp, fp, fn = int((p & t).sum()), int((p & ~t).sum()), int((~p & t).sum())
    return ModelMetrics(
        n=n,
        positive_rate=float(t.sum()) / n if n else 0.0,
        accuracy=float((p == t).sum()) / n if n else 0.0,
        precision=tp / (tp + fp) if tp + fp else None,
        recall=tp / (tp + fn) if tp + fn else None,
        f1=2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None,
    )


def _nll(probs: torch.Tensor, y: torch.Tensor, known: torch.Tensor) -> float:
    """Mean negative log-likelihood of the known labels."""
    p = probs.double().clamp(1e-6, 1 - 1e-6)[known]
    t = y.double()[known]
    if p.numel() == 0:
        return float("nan")
    return float(-(t * p.log() + (1 - t) * (1 - p).log()).mean())
