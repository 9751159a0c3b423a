"""Training the shared-trunk head on exploration triplets (Bradley-Terry, frozen trunk).

The same data and loss as the LLM2 verifier (``workers.verifier.train``): every reference
with triplets is one ``TrainingExample``, items are split by ``split_by_item``, and the loss
is L = -mean log sigmoid(s(x+ | h) - s(x- | h)). What differs:

* the generator is frozen and only U and V train, so the hidden states never change: one
  forward pass of the decoder over each sequence (no grad, no logits) gives h_{t-1} for
  every triplet at position t (``trunk_features``), computed once before the first epoch;
  an epoch is then a few small matmuls, and many epochs cost next to nothing;
* the rate of U and V is ``TrainSettings.head_lr`` (``lr``, ``mode`` and the layer options
  are the LLM2 backbone's and are not used); warm-up and cosine decay, clipping, batches of
  ``batch_size`` sequences, seeds and the validation pairwise accuracy (ties one half, so an
  untrained head scores exactly 0.5) are as there.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
import torch

from workers.verifier.scoring import bradley_terry_loss
from workers.verifier.train import (
    EpochMetrics,
    TrainingExample,
    TrainingMetrics,
    TrainSettings,
    warmup_cosine,
)
from workers.verifier.trunk_head import TrunkHead, output_embeddings
from workers.verifier.trunk_scoring import last_hidden_states

__all__ = [
    "TrunkFeatures",
    "TrunkTrainingMetrics",
    "evaluate_trunk_pairs",
    "train_trunk_head",
    "trunk_features",
]

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class TrunkFeatures:
    """One example's triplets as the head sees them: ``hidden`` ([m, d], float32) is the
    state before each triplet's position, ``positive``/``negative`` ([m]) the token ids."""

    item: str
    hidden: torch.Tensor
    positive: torch.Tensor
    negative: torch.Tensor


@dataclass
class TrunkTrainingMetrics(TrainingMetrics):
    """``TrainingMetrics`` plus the head's kind and rank and the seconds spent computing
    the hidden states (``seconds`` includes them)."""

    kind: str = "trunk_head"
    rank: int = 0
    feature_seconds: float = 0.0


@torch.no_grad()  # not inference_mode: the states feed autograd (U and V's gradients)
def trunk_features(
    causal_lm: Any, examples: Sequence[TrainingExample], batch_size: int = 4
) -> list[TrunkFeatures]:
    """Each example's triplet states from the frozen generator, ``batch_size`` sequences
    per forward pass (right-padded, cut after the last triplet's prefix)."""
    out: list[TrunkFeatures] = []
    for start in range(0, len(examples), batch_size):
        batch = examples[start : start + batch_size]
        for example in batch:
            if any(not 1 <= t.position <= len(example.sequence) for t in example.triplets):
                raise ValueError(
                    f"item {example.item}: a triplet position lies outside 1..len(sequence) "
                    "(the head needs at least one token of prefix)"
                )
        width = max(max(t.position for t in e.triplets) for e in batch)
        ids = torch.zeros((len(batch), width), dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for b, example in enumerate(batch):
            length = min(width, len(example.sequence))
            ids[b, :length] = torch.tensor(example.sequence[:length], dtype=torch.long)
            mask[b, :length] = 1
        hidden = last_hidden_states(causal_lm, ids, mask).float().cpu()
        for b, example in enumerate(batch):
            at = torch.tensor([t.position - 1 for t in example.triplets], dtype=torch.long)
            out.append(
                TrunkFeatures(
                    example.item,
                    hidden[b, at].clone(),
                    torch.tensor([t.positive for t in example.triplets], dtype=torch.long),
                    torch.tensor([t.negative for t in example.triplets], dtype=torch.long),
                )
            )
    return out


def _pair_scores(
    head: TrunkHead, embeddings: torch.Tensor, batch: Sequence[TrunkFeatures]
) -> tuple[torch.Tensor, torch.Tensor]:
    hidden = torch.cat([f.hidden for f in batch]).to(head.U.device)
    positive = torch.cat([f.positive for f in batch]).to(embeddings.device)
    negative = torch.cat([f.negative for f in batch]).to(embeddings.device)
    return (
        head.score_tokens(hidden, embeddings[positive].to(hidden.device)),
        head.score_tokens(hidden, embeddings[negative].to(hidden.device)),
    )


@torch.no_grad()
def evaluate_trunk_pairs(
    head: TrunkHead, embeddings: torch.Tensor, features: Sequence[TrunkFeatures]
) -> tuple[float, float]:
    """(mean Bradley-Terry loss, pairwise accuracy with ties as one half) over ``features``."""
    if not features:
        raise ValueError("no triplets to evaluate")
    pos, neg = _pair_scores(head, embeddings, features)
    accuracy = (float((pos > neg).sum()) + 0.5 * float((pos == neg).sum())) / pos.numel()
    return float(bradley_terry_loss(pos, neg)), accuracy


def train_trunk_head(
    head: TrunkHead,
    causal_lm: Any,
    train: Sequence[TrainingExample],
    val: Sequence[TrainingExample],
    settings: TrainSettings,
    *,
    on_step: Callable[[int, int, float], None] | None = None,
) -> TrunkTrainingMetrics:
    """Train ``head`` in place on the frozen ``causal_lm``'s states; returns metrics.

    ``on_step(step, steps, loss)`` is called after every optimiser step.
    """
    if not train:
        raise ValueError("no training triplets")
    started = time.perf_counter()
    train_f = trunk_features(causal_lm, train)
    val_f = trunk_features(causal_lm, val)
    feature_seconds = time.perf_counter() - started
    embeddings = output_embeddings(causal_lm).detach()
    torch.manual_seed(settings.seed)
    shuffler = random.Random(settings.seed)
    per_epoch = math.ceil(len(train_f) / settings.batch_size)
    steps = per_epoch * settings.epochs
    parameters = [head.U, head.V]
    optimizer = torch.optim.AdamW(
        parameters, lr=settings.head_lr, weight_decay=settings.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(steps, settings.warmup_fraction)
    )
    metrics = TrunkTrainingMetrics(
        settings=settings,
        base_model=head.base_model,
        train_items=len({e.item for e in train}),
        val_items=len({e.item for e in val}),
        train_sequences=len(train),
        val_sequences=len(val),
        train_triplets=sum(len(e.triplets) for e in train),
        val_triplets=sum(len(e.triplets) for e in val),
        rank=head.rank,
        feature_seconds=feature_seconds,
    )
    metrics.epochs.append(EpochMetrics(0, None, *_validate(head, embeddings, val_f), 0.0))
    step = 0
    for epoch in range(1, settings.epochs + 1):
        epoch_started = time.perf_counter()
        order = list(train_f)
        shuffler.shuffle(order)
        head.train()
        loss_sum, count = 0.0, 0
        for first in range(0, len(order), settings.batch_size):
            pos, neg = _pair_scores(head, embeddings, order[first : first + settings.batch_size])
            loss = bradley_terry_loss(pos, neg)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            torch.nn.utils.clip_grad_norm_(parameters, settings.max_grad_norm)
            optimizer.step()
            scheduler.step()
            step += 1
            loss_sum += float(loss.detach()) * pos.numel()
            count += pos.numel()
            if on_step is not None:
                on_step(step, steps, float(loss.detach()))
        head.eval()
        val_loss, val_accuracy = _validate(head, embeddings, val_f)
        metrics.epochs.append(
            EpochMetrics(
                epoch, loss_sum / count, val_loss, val_accuracy, time.perf_counter() - epoch_started
            )
        )
        log.info(
            "verifier.trunk_train.epoch",
            epoch=epoch,
            train_loss=round(loss_sum / count, 4),
            val_accuracy=val_accuracy,
        )
    metrics.steps = step
    metrics.seconds = time.perf_counter() - started
    return metrics


def _validate(
    head: TrunkHead, embeddings: torch.Tensor, val: Sequence[TrunkFeatures]
) -> tuple[float | None, float | None]:
    if not val:
        return None, None
    return evaluate_trunk_pairs(head, embeddings, val)
