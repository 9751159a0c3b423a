"""Training the token verifier on exploration triplets (Bradley-Terry, packed pairs).

Data: every reference of a triplets file (``synthesize_triplets``) with at least one
triplet is one sequence, prompt ids (rendered and encoded as ``TransformersWorker`` does)
followed by the reference's scored token ids; all its triplets are scored in one packed
forward pass (``pair_scores``). Items are split into train / validation by a seeded
shuffle, so no item is on both sides.

Optimisation (ours where the paper is silent): AdamW over the trainable mode's parameters,
the zero-initialised head with its own (larger) rate ``head_lr``; the rate follows a linear
warm-up over the first ``warmup_fraction`` of the steps, then a cosine decay to 0; gradients
are clipped to ``max_grad_norm``. A batch is ``batch_size`` sequences, its loss the mean
over all their triplets. Validation pairwise accuracy is the share of triplets with
s+ > s-, a tie counting one half (so an untrained verifier scores exactly 0.5). Seeds fix
the split, the shuffles and any random initialisation, so a run is reproducible.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import structlog
import torch

from workers.verifier.network import TokenVerifier, TrainableMode
from workers.verifier.pairs import Triplet, pair_scores
from workers.verifier.scoring import bradley_terry_loss

__all__ = [
    "EpochMetrics",
    "TrainSettings",
    "TrainingExample",
    "TrainingMetrics",
    "evaluate_pairs",
    "examples_from_records",
    "split_by_item",
    "train_verifier",
    "warmup_cosine",
    "write_metrics",
]

log = structlog.get_logger(__name__)

METRICS_FILE = "metrics.json"


@dataclass(frozen=True)
class TrainingExample:
    """One reference: its full token sequence and the triplets on it (absolute positions)."""

    item: str
    sequence: tuple[int, ...]
    triplets: tuple[Triplet, ...]


@dataclass(frozen=True)
class TrainSettings:
    """Training knobs (defaults and why in brackets).

    mode, trainable_layers, lora_rank: what is trained [``last_layers``, 2: a CPU-feasible
        middle ground; ``full`` is the paper's, ``head`` a linear probe].
    epochs [2, the paper's], batch_size: sequences per step [8].
    lr: backbone rate [2e-5, the paper's], head_lr: the head's [1e-3: it starts at zero].
    warmup_fraction [0.1, the paper's], weight_decay [0.0], max_grad_norm [1.0].
    val_fraction: items held out [0.2], seed [0].
    """

    mode: TrainableMode = "last_layers"
    trainable_layers: int = 2
    lora_rank: int = 8
    epochs: int = 2
    batch_size: int = 8
    lr: float = 2e-5
    head_lr: float = 1e-3
    warmup_fraction: float = 0.1
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    val_fraction: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be >= 1")
        if not 0.0 <= self.warmup_fraction < 1.0:
            raise ValueError("warmup_fraction must lie in [0, 1)")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError("val_fraction must lie in [0, 1)")
        if self.lr < 0 or self.head_lr < 0 or self.max_grad_norm <= 0:
            raise ValueError("rates must be >= 0 and max_grad_norm > 0")


@dataclass(frozen=True)
class EpochMetrics:
    """After epoch ``epoch`` (0: before training): mean training loss over the epoch's
    triplets (None at epoch 0), validation loss and pairwise accuracy (None without a
    validation set), and the epoch's seconds."""

    epoch: int
    train_loss: float | None
    val_loss: float | None
    val_accuracy: float | None
    seconds: float


@dataclass
class TrainingMetrics:
    """What a run used and measured; ``to_json`` is the metrics file's content."""

    settings: TrainSettings
    base_model: str
    train_items: int
    val_items: int
    train_sequences: int
    val_sequences: int
    train_triplets: int
    val_triplets: int
    steps: int = 0
    epochs: list[EpochMetrics] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def examples_from_records(
    records: Sequence[Mapping[str, Any]], encode_prompt: Callable[[Any], Sequence[int]]
) -> list[TrainingExample]:
    """Training sequences from triplets-file item records (references without triplets are
    dropped). ``encode_prompt`` maps a record's ``prompt`` (text or chat messages as dicts)
    to the ids the generator read."""
    examples = []
    for record in records:
        if record.get("status") != "ok" or not record.get("triplets"):
            continue
        prompt_ids = tuple(int(i) for i in encode_prompt(record["prompt"]))
        by_reference: dict[int, list[Triplet]] = {}
        for t in record["triplets"]:
            by_reference.setdefault(int(t["reference"]), []).append(
                Triplet(
                    len(prompt_ids) + int(t["position"]), int(t["gold_id"]), int(t["negative_id"])
                )
            )
        for index, triplets in sorted(by_reference.items()):
            reference = record["references"][index]
            sequence = prompt_ids + tuple(int(i) for i in reference["token_ids"])
            examples.append(TrainingExample(str(record["id"]), sequence, tuple(triplets)))
    return examples


def split_by_item(
    examples: Sequence[TrainingExample], val_fraction: float, seed: int
) -> tuple[list[TrainingExample], list[TrainingExample]]:
    """(train, validation): ``round(val_fraction * items)`` items, drawn by ``seed``, are
    held out (at least one when ``val_fraction > 0`` and there are two items or more)."""
    items = sorted({e.item for e in examples})
    random.Random(seed).shuffle(items)
    held = round(val_fraction * len(items))
    if val_fraction > 0 and len(items) >= 2:
        held = min(max(held, 1), len(items) - 1)
    val_items = set(items[:held])
    train = [e for e in examples if e.item not in val_items]
    val = [e for e in examples if e.item in val_items]
    return train, val


def _batches(examples: Sequence[TrainingExample], size: int) -> list[list[TrainingExample]]:
    return [list(examples[i : i + size]) for i in range(0, len(examples), size)]


def _scores(
    verifier: TokenVerifier, batch: Sequence[TrainingExample]
) -> tuple[torch.Tensor, torch.Tensor]:
    return pair_scores(verifier, [e.sequence for e in batch], [e.triplets for e in batch])


@torch.no_grad()
def evaluate_pairs(
    verifier: TokenVerifier, examples: Sequence[TrainingExample], batch_size: int = 8
) -> tuple[float, float]:
    """(mean Bradley-Terry loss, pairwise accuracy with ties as one half) over ``examples``."""
    was_training = verifier.training
    verifier.eval()
    loss_sum, right, count = 0.0, 0.0, 0
    for batch in _batches(examples, batch_size):
        pos, neg = _scores(verifier, batch)
        loss_sum += float(bradley_terry_loss(pos, neg)) * pos.numel()
        right += float((pos > neg).sum()) + 0.5 * float((pos == neg).sum())
        count += pos.numel()
    verifier.train(was_training)
    if count == 0:
        raise ValueError("no triplets to evaluate")
    return loss_sum / count, right / count


def warmup_cosine(steps: int, warmup_fraction: float) -> Callable[[int], float]:
    """The learning-rate factor per step: linear warm-up, then cosine decay to 0."""
    warmup = math.ceil(warmup_fraction * steps)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def train_verifier(
    verifier: TokenVerifier,
    train: Sequence[TrainingExample],
    val: Sequence[TrainingExample],
    settings: TrainSettings,
    *,
    on_step: Callable[[int, int, float], None] | None = None,
) -> TrainingMetrics:
    """Train ``verifier`` in place (its trainable mode decides what moves); returns metrics.

    ``on_step(step, steps, loss)`` is called after every optimiser step (progress bars).
    """
    if not train:
        raise ValueError("no training triplets")
    started = time.perf_counter()
    torch.manual_seed(settings.seed)
    shuffler = random.Random(settings.seed)
    per_epoch = math.ceil(len(train) / settings.batch_size)
    steps = per_epoch * settings.epochs
    head = [verifier.head.weight]
    rest = [p for n, p in verifier.named_parameters() if p.requires_grad and n != "head.weight"]
    groups: list[dict[str, Any]] = [{"params": head, "lr": settings.head_lr}]
    if rest:
        groups.append({"params": rest, "lr": settings.lr})
    optimizer = torch.optim.AdamW(groups, weight_decay=settings.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(steps, settings.warmup_fraction)
    )
    trainable = head + rest
    metrics = TrainingMetrics(
        settings=settings,
        base_model=verifier.base_model,
        train_items=len({e.item for e in train}),
        val_items=len({e.item for e in val}),
        train_sequences=len(train),
        val_sequences=len(val),
        train_triplets=sum(len(e.triplets) for e in train),
        val_triplets=sum(len(e.triplets) for e in val),
    )
    metrics.epochs.append(EpochMetrics(0, None, *_validate(verifier, val, settings), 0.0))
    step = 0
    for epoch in range(1, settings.epochs + 1):
        epoch_started = time.perf_counter()
        order = list(train)
        shuffler.shuffle(order)
        verifier.train()
        loss_sum, count = 0.0, 0
        for batch in _batches(order, settings.batch_size):
            pos, neg = _scores(verifier, batch)
            loss = bradley_terry_loss(pos, neg)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            torch.nn.utils.clip_grad_norm_(trainable, settings.max_grad_norm)
            optimizer.step()
            scheduler.step()
            step += 1
            value = float(loss.detach())
            loss_sum += value * pos.numel()
            count += pos.numel()
            if on_step is not None:
                on_step(step, steps, value)
        verifier.eval()
        val_loss, val_accuracy = _validate(verifier, val, settings)
        seconds = time.perf_counter() - epoch_started
        metrics.epochs.append(
            EpochMetrics(epoch, loss_sum / count, val_loss, val_accuracy, seconds)
        )
        log.info(
            "verifier.train.epoch",
            epoch=epoch,
            train_loss=round(loss_sum / count, 4),
            val_loss=None if val_loss is None else round(val_loss, 4),
            val_accuracy=val_accuracy,
        )
    metrics.steps = step
    metrics.seconds = time.perf_counter() - started
    return metrics


def _validate(
    verifier: TokenVerifier, val: Sequence[TrainingExample], settings: TrainSettings
) -> tuple[float | None, float | None]:
    if not val:
        return None, None
    return evaluate_pairs(verifier, val, settings.batch_size)


def write_metrics(metrics: TrainingMetrics, directory: Path | str) -> Path:
    """Write ``metrics.json`` into ``directory`` (beside the saved verifier)."""
    path = Path(directory) / METRICS_FILE
    path.write_text(json.dumps(metrics.to_json(), indent=2) + "\n")
    return path
