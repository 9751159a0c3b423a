"""The training loop both fine-tunes and CODI share: which parameters train, the seeded
batch order, AdamW with warmup and linear decay, gradient clipping.

Modes (``TrainSettings.mode``):

* ``full``: every weight of the model trains.
* ``last_layers``: the last ``layers`` decoder layers and the final norm train; of the
  embedding table (tied to the LM head in SmolLM2) only the rows a latent vocabulary added
  (``new_rows_from`` on): their gradient is masked to those rows, and they get no weight
  decay. A model without added rows keeps its embeddings frozen.

Added rows (a latent vocabulary's, in either mode) can step ``new_rows_step_scale`` times as
far as AdamW moves them (``run_training``'s ``new_rows``): they start at the mean embedding,
and at the small learning rates a fine-tune of the pretrained weights needs, a short run
leaves them too close to it for the model ever to generate one (measured: 40 steps at 5e-5
and no latent id generated on 200 held-out items).

The batch order depends only on the seed and the epoch (``epoch_batches``), so two arms
trained on the same examples see them in the same order, and a rerun repeats a run.

Example:
    >>> [len(b) for b in epoch_batches(10, 4, seed=0, epoch=0)]
    [4, 4, 2]
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import structlog
import torch
from torch import nn

from workers.latent import embedding_tables

__all__ = [
    "TrainMode",
    "TrainSettings",
    "TrainingLog",
    "added_rows",
    "epoch_batches",
    "pad_batch",
    "run_training",
    "trainable_parameters",
]

log = structlog.get_logger(__name__)

T = TypeVar("T")
TrainMode = Literal["full", "last_layers"]
StepHook = Callable[[int, int, float], None]
"""Called with (step done, steps in all, its loss) after every optimiser step."""


@dataclass(frozen=True, slots=True)
class TrainSettings:
    mode: TrainMode = "full"
    layers: int = 4  # trained decoder layers in last_layers mode
    epochs: int = 1
    batch_size: int = 8
    learning_rate: float = 5e-5
    weight_decay: float = 0.0
    warmup_steps: int = 10
    max_grad_norm: float = 1.0
    seed: int = 0
    max_steps: int | None = None  # stop after this many steps (smoke runs)
    new_rows_step_scale: float = 1.0  # added embedding rows step this many times as far

    def __post_init__(self) -> None:
        if self.mode not in ("full", "last_layers"):
            raise ValueError(f"unknown mode {self.mode!r}: full or last_layers")
        if min(self.layers, self.epochs, self.batch_size) < 1 or self.learning_rate <= 0:
            raise ValueError(
                "layers, epochs and batch_size must be >= 1 and learning_rate > 0, got "
                f"{self.layers}, {self.epochs}, {self.batch_size}, {self.learning_rate}"
            )
        if self.new_rows_step_scale <= 0:
            raise ValueError(f"new_rows_step_scale must be > 0, got {self.new_rows_step_scale}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {self.max_steps}")

    def steps_for(self, examples: int) -> int:
        """Optimiser steps for ``examples`` examples."""
        steps = self.epochs * math.ceil(examples / self.batch_size)
        return steps if self.max_steps is None else min(steps, self.max_steps)


@dataclass
class TrainingLog:
    steps: int = 0
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def final_loss(self) -> float:
        """Mean loss over the last tenth of the steps (at least one)."""
        tail = self.losses[-max(1, len(self.losses) // 10) :]
        return sum(tail) / len(tail) if tail else float("nan")


def trainable_parameters(
    model: Any, settings: TrainSettings, *, new_rows_from: int | None = None
) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """Set ``requires_grad`` by mode; returns (decayed, undecayed) parameters."""
    if settings.mode == "full":
        model.requires_grad_(True)
        return [p for p in model.parameters()], []
    model.requires_grad_(False)
    decoder = model.get_decoder()
    layers = decoder.layers[-settings.layers :]
    trained = [p for layer in layers for p in layer.parameters()]
    trained += list(decoder.norm.parameters())
    for p in trained:
        p.requires_grad_(True)
    undecayed: list[nn.Parameter] = []
    if new_rows_from is not None:
        embedding = model.get_input_embeddings().weight
        embedding.requires_grad_(True)
        mask = torch.zeros(embedding.shape[0], 1, dtype=embedding.dtype)
        mask[new_rows_from:] = 1.0
        embedding.register_hook(lambda grad: grad * mask)
        output = model.get_output_embeddings()
        if output is not None and output.weight is not embedding:
            output.weight.requires_grad_(True)
            output.weight.register_hook(lambda grad: grad * mask)
            undecayed.append(output.weight)
        undecayed.append(embedding)
    return trained, undecayed


def added_rows(model: Any, new_rows_from: int | None) -> list[tuple[torch.Tensor, int]]:
    """(weight, ``new_rows_from``) of the model's input and (untied) output embeddings; none
    for a model without added rows."""
    if new_rows_from is None:
        return []
    return [(weight, new_rows_from) for weight in embedding_tables(model)]


def _step_scaled(
    optimiser: torch.optim.Optimizer, rows: Sequence[tuple[torch.Tensor, int]], scale: float
) -> None:
    """One optimiser step, then the added ``rows`` moved ``scale`` times as far as it moved
    them."""
    if scale == 1.0 or not rows:
        optimiser.step()
        return
    before = [weight.detach()[start:].clone() for weight, start in rows]
    optimiser.step()
    with torch.no_grad():
        for (weight, start), old in zip(rows, before, strict=True):
            weight[start:] = old + scale * (weight[start:] - old)


def epoch_batches(examples: int, batch_size: int, *, seed: int, epoch: int) -> list[list[int]]:
    """The example indices of each batch of one epoch (shuffled by seed and epoch)."""
    order = list(range(examples))
    random.Random(f"{seed}:{epoch}").shuffle(order)
    return [order[i : i + batch_size] for i in range(0, examples, batch_size)]


def pad_batch(
    rows: Sequence[tuple[Sequence[int], Sequence[int]]], pad_id: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(input ids, attention mask, labels) of (input ids, labels) rows, padded on the right
    (labels -100 on padding)."""
    width = max(len(ids) for ids, _ in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    for i, (row_ids, row_labels) in enumerate(rows):
        ids[i, : len(row_ids)] = torch.tensor(row_ids, dtype=torch.long)
        mask[i, : len(row_ids)] = 1
        labels[i, : len(row_labels)] = torch.tensor(row_labels, dtype=torch.long)
    return ids, mask, labels


def run_training(
    parameters: tuple[list[nn.Parameter], list[nn.Parameter]],
    examples: Sequence[T],
    settings: TrainSettings,
    loss_of: Callable[[Sequence[T]], torch.Tensor],
    *,
    new_rows: Sequence[tuple[torch.Tensor, int]] = (),
    on_step: StepHook | None = None,
) -> TrainingLog:
    """Minimise ``loss_of(batch)`` over ``examples`` with AdamW (linear warmup over
    ``warmup_steps``, then linear decay to 0), clipping the gradient norm. ``new_rows``:
    (weight, first added row) of the tables whose added rows step
    ``settings.new_rows_step_scale`` times as far (``added_rows``)."""
    if not examples:
        raise ValueError("no examples to train on")
    decayed, undecayed = parameters
    optimiser = torch.optim.AdamW(
        [
            {"params": decayed, "weight_decay": settings.weight_decay},
            {"params": undecayed, "weight_decay": 0.0},
        ],
        lr=settings.learning_rate,
    )
    total = settings.steps_for(len(examples))
    warmup = min(settings.warmup_steps, max(total - 1, 0))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total - step) / max(1, total - warmup))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, factor)
    everything = decayed + undecayed
    result = TrainingLog()
    started = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        for epoch in range(settings.epochs):
            for batch in epoch_batches(
                len(examples), settings.batch_size, seed=settings.seed, epoch=epoch
            ):
                if result.steps >= total:
                    break
                loss = loss_of([examples[i] for i in batch])
                optimiser.zero_grad(set_to_none=True)
                loss.backward()  # type: ignore[no-untyped-call]
                torch.nn.utils.clip_grad_norm_(everything, settings.max_grad_norm)
                _step_scaled(optimiser, new_rows, settings.new_rows_step_scale)
                scheduler.step()
                result.steps += 1
                result.losses.append(float(loss.detach()))
                if on_step is not None:
                    on_step(result.steps, total, result.losses[-1])
    result.seconds = time.perf_counter() - started
    log.info("latent.training.done", steps=result.steps, final_loss=result.final_loss)
    return result
