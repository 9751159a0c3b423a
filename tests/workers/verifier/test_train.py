"""Verifier training on a tiny separable set: the loss falls, validation accuracy rises."""

from __future__ import annotations

import random

import pytest
import torch

from tests.workers.tiny_model import tiny_model
from workers.verifier import (
    TokenVerifier,
    TrainingExample,
    TrainSettings,
    Triplet,
    evaluate_pairs,
    examples_from_records,
    split_by_item,
    train_verifier,
)

GOOD = list(range(2, 12))  # positives are always drawn from here ...
BAD = list(range(20, 30))  # ... negatives from here: separable by the candidate alone


def _examples(items: int = 30, seed: int = 0) -> list[TrainingExample]:
    rng = random.Random(seed)
    examples = []
    for i in range(items):
        sequence = tuple(rng.randrange(2, 41) for _ in range(12))
        triplets = tuple(
            Triplet(rng.randrange(1, 12), rng.choice(GOOD), rng.choice(BAD)) for _ in range(3)
        )
        examples.append(TrainingExample(f"item{i}", sequence, triplets))
    return examples


SETTINGS = TrainSettings(
    mode="head", epochs=6, batch_size=4, head_lr=0.05, warmup_fraction=0.1, seed=3
)


def _train(settings: TrainSettings = SETTINGS) -> tuple[TokenVerifier, list[float]]:
    train, val = split_by_item(_examples(), settings.val_fraction, settings.seed)
    verifier = TokenVerifier.from_generator(tiny_model(), trainable=settings.mode)
    metrics = train_verifier(verifier, train, val, settings)
    losses = [e.train_loss for e in metrics.epochs[1:]]
    assert all(loss is not None for loss in losses)
    accuracy = [e.val_accuracy for e in metrics.epochs]
    assert metrics.epochs[0].val_accuracy == 0.5  # zero head: every pair ties
    assert accuracy[-1] is not None
    assert accuracy[-1] >= 0.9
    assert metrics.val_items == 6
    assert metrics.train_items == 24
    return verifier, [float(x) for x in losses if x is not None]


def test_training_lowers_the_loss_and_raises_validation_accuracy() -> None:
    _, losses = _train()
    assert losses[-1] < losses[0] < 0.6932  # log 2: the untrained loss


def test_training_is_deterministic_with_fixed_seeds() -> None:
    first, losses_a = _train()
    second, losses_b = _train()
    assert losses_a == losses_b
    assert torch.equal(first.head.weight, second.head.weight)


def test_last_layers_mode_trains_the_backbone_too() -> None:
    """(The zero head passes no gradient back on the first step; the second one does.)"""
    settings = TrainSettings(
        mode="last_layers", trainable_layers=1, epochs=2, batch_size=8, lr=1e-3, seed=0
    )
    train, val = split_by_item(_examples(8), 0.25, 0)
    verifier = TokenVerifier.from_generator(
        tiny_model(), trainable="last_layers", trainable_layers=1
    )
    before = verifier.backbone.layers[1].mlp.up_proj.weight.detach().clone()
    frozen = verifier.backbone.layers[0].mlp.up_proj.weight.detach().clone()
    metrics = train_verifier(verifier, train, val, settings)
    assert metrics.steps == 2
    assert not torch.equal(before, verifier.backbone.layers[1].mlp.up_proj.weight)
    assert torch.equal(frozen, verifier.backbone.layers[0].mlp.up_proj.weight)


def test_split_keeps_items_whole_and_is_seeded() -> None:
    examples = _examples(10)
    examples += [TrainingExample("item0", (2, 3, 4), (Triplet(1, 2, 20),))]  # a 2nd reference
    train, val = split_by_item(examples, 0.2, seed=1)
    assert {e.item for e in train}.isdisjoint({e.item for e in val})
    assert len({e.item for e in val}) == 2
    assert split_by_item(examples, 0.2, seed=1) == (train, val)
    assert split_by_item(examples, 0.0, seed=1) == (examples, [])


def test_evaluate_pairs_counts_ties_as_half_and_needs_triplets() -> None:
    verifier = TokenVerifier.from_generator(tiny_model())
    loss, accuracy = evaluate_pairs(verifier, _examples(3))
    assert accuracy == 0.5
    assert loss == pytest.approx(0.6931, abs=1e-4)
    with pytest.raises(ValueError, match="no triplets"):
        evaluate_pairs(verifier, [])


def test_examples_from_records_offsets_positions_by_the_prompt() -> None:
    record = {
        "id": "a",
        "status": "ok",
        "prompt": "hi",
        "references": [{"token_ids": [7, 8, 9]}, {"token_ids": [5]}],
        "triplets": [{"reference": 0, "position": 2, "gold_id": 9, "negative_id": 4}],
    }
    skipped = {**record, "id": "b", "status": "failed"}
    examples = examples_from_records([record, skipped], lambda prompt: [1, 2, 3, 4])
    assert examples == [TrainingExample("a", (1, 2, 3, 4, 7, 8, 9), (Triplet(6, 9, 4),))]


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="epochs"):
        TrainSettings(epochs=0)
    with pytest.raises(ValueError, match="warmup_fraction"):
        TrainSettings(warmup_fraction=1.0)
