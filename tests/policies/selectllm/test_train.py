"""Training SelectLLM's router honestly: metrics on items held out from both the head and
the calibration, a warning where calibration leaves a model's confidence constant, and
routers saved before those fields still loading (the rest of training: ``test_router.py``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import structlog
import torch
from typer.testing import CliRunner

from policies.selectllm.router import PlattCalibration, QueryRouter
from policies.selectllm.train import (
    CONSTANT_CONFIDENCE_SPREAD,
    split_items,
    train_router,
)
from tests.policies.selectllm.test_router import (
    WordHashEmbedder,
    small_router,
    synthetic_labels,
    write_labels,
)


class TopicEmbedder(WordHashEmbedder):
    """Hashed words plus one feature that says whether the text holds a digit: arithmetic
    questions are easy to tell apart, so the synthetic labels are learnable."""

    name = "word-hash-topic"

    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        rows = super().embed(texts)
        rows[:, 0] += torch.tensor([float(any(c.isdigit() for c in t)) for t in texts])
        return rows


class ConstantEmbedder:
    """Every text embeds to the same vector: the features say nothing about the labels."""

    name = "constant"
    dim = 8

    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        return torch.ones(len(texts), self.dim)


def _flip(records: list[dict[str, Any]], items: Sequence[str]) -> list[dict[str, Any]]:
    chosen = set(items)
    return [{**r, "label": 1 - r["label"]} if r["item"] in chosen else r for r in records]


def _same_head(a: QueryRouter, b: QueryRouter) -> bool:
    pairs = zip(a.head.state_dict().values(), b.head.state_dict().values(), strict=True)
    return all(torch.equal(x, y) for x, y in pairs)


# --- the split --------------------------------------------------------------------------


@pytest.mark.parametrize("n", [3, 5, 10, 40, 101])
@pytest.mark.parametrize(("val", "cal"), [(0.2, 0.2), (0.1, 0.3), (0.4, 0.4)])
def test_split_is_disjoint_and_covers_every_item(n: int, val: float, cal: float) -> None:
    """Train, calibration and validation items are disjoint, non-empty and cover all ids."""
    ids = [f"item{i}" for i in range(n)]
    split = split_items(ids, seed=1, val_fraction=val, calibration_fraction=cal)
    parts = [set(split.train), set(split.calibration), set(split.validation)]
    assert all(parts)
    assert sum(len(p) for p in parts) == n
    assert set.union(*parts) == set(ids)


def test_split_defaults_to_60_20_20_and_is_seeded() -> None:
    """40 items split 24/8/8; the same seed gives the same split, another seed another."""
    ids = [f"q{i}" for i in range(40)]
    split = split_items(ids, seed=0, val_fraction=0.2, calibration_fraction=0.2)
    sizes = (len(split.train), len(split.calibration), len(split.validation))
    assert sizes == (24, 8, 8)
    assert split == split_items(ids[::-1], seed=0, val_fraction=0.2, calibration_fraction=0.2)
    assert split != split_items(ids, seed=1, val_fraction=0.2, calibration_fraction=0.2)


@pytest.mark.parametrize(
    ("n", "val", "cal", "message"),
    [
        (2, 0.2, 0.2, "no item to train on"),
        (10, 0.5, 0.5, "must be below 1"),
        (10, 0.0, 0.2, "val_fraction must be in"),
        (10, 0.2, 1.0, "calibration_fraction must be in"),
    ],
)
def test_split_refuses_an_empty_split(n: int, val: float, cal: float, message: str) -> None:
    """Too few items, or fractions that leave nothing to train on, are a clear error."""
    with pytest.raises(ValueError, match=message):
        split_items([f"i{k}" for k in range(n)], seed=0, val_fraction=val, calibration_fraction=cal)


# --- metrics on held-out items ----------------------------------------------------------


def test_metrics_come_from_validation_items_only() -> None:
    """The reported sizes are the split's, and each model's validation n and positive rate
    are those of the held-out validation items' labels."""
    records = synthetic_labels()
    split = split_items(
        sorted({r["item"] for r in records}), seed=0, val_fraction=0.2, calibration_fraction=0.2
    )
    router, metrics = train_router(records, TopicEmbedder(), seed=0, epochs=5)
    assert (metrics.train_items, metrics.calibration_items, metrics.val_items) == (24, 8, 8)
    for model in ("arith", "words"):
        held_out = [
            r["label"] for r in records if r["model"] == model and r["item"] in split.validation
        ]
        assert metrics.per_model[model].n == len(held_out) == 8
        assert metrics.per_model[model].positive_rate == sum(held_out) / len(held_out)
    assert router.training["calibration_fraction"] == 0.2
    assert router.metrics["calibration_items"] == 8


def test_validation_labels_touch_neither_the_head_nor_the_calibration() -> None:
    """Flipping every validation label changes only the metrics; flipping the calibration
    labels changes the calibration but not the head; flipping the training labels changes
    the head."""
    records = synthetic_labels()
    split = split_items(
        sorted({r["item"] for r in records}), seed=0, val_fraction=0.2, calibration_fraction=0.2
    )
    base, base_metrics = train_router(records, TopicEmbedder(), seed=0, epochs=20)

    flipped_val, val_metrics = train_router(
        _flip(records, split.validation), TopicEmbedder(), seed=0, epochs=20
    )
    assert _same_head(flipped_val, base)
    assert flipped_val.calibration == base.calibration
    assert val_metrics.micro_accuracy == pytest.approx(1.0 - base_metrics.micro_accuracy)

    flipped_cal, _ = train_router(
        _flip(records, split.calibration), TopicEmbedder(), seed=0, epochs=20
    )
    assert _same_head(flipped_cal, base)
    assert flipped_cal.calibration != base.calibration

    flipped_train, _ = train_router(_flip(records, split.train), TopicEmbedder(), seed=0, epochs=20)
    assert not _same_head(flipped_train, base)


# --- constant confidence ----------------------------------------------------------------


def test_constant_confidence_is_warned_when_features_say_nothing(tmp_path: Path) -> None:
    """Labels uncorrelated with the features (all texts embed alike) leave every model's
    calibrated confidence constant: a warning names each model and its slope, and the
    metrics (and the saved router) say so."""
    with structlog.testing.capture_logs() as logs:
        router, metrics = train_router(synthetic_labels(), ConstantEmbedder(), seed=0, epochs=5)
    warned = [e for e in logs if e["event"] == "router.train.constant_confidence"]
    assert sorted(e["model"] for e in warned) == ["arith", "words"]
    assert all(e["log_level"] == "warning" and isinstance(e["slope"], float) for e in warned)
    assert metrics.constant_confidence == ["arith", "words"]
    assert all(m.confidence_spread < CONSTANT_CONFIDENCE_SPREAD for m in metrics.per_model.values())
    router.save(tmp_path / "r")
    saved = json.loads((tmp_path / "r" / "router.json").read_text())["metrics"]
    assert saved["per_model"]["words"]["constant_confidence"] is True


def test_no_constant_confidence_warning_on_a_learnable_problem() -> None:
    """Where the features tell the models' right queries apart, calibration keeps a clear
    slope and nothing is warned."""
    with structlog.testing.capture_logs() as logs:
        _, metrics = train_router(synthetic_labels(), TopicEmbedder(), seed=0, epochs=20)
    assert not [e for e in logs if e["event"] == "router.train.constant_confidence"]
    assert metrics.constant_confidence == []
    for m in metrics.per_model.values():
        assert m.calibration_slope > 1.0
        assert m.confidence_spread > 10 * CONSTANT_CONFIDENCE_SPREAD


def test_calibration_on_uncorrelated_logits_has_a_vanishing_slope() -> None:
    """Labels uncorrelated with the logits drive Platt's slope to about 0 (the 3e-7 seen
    in a benchmark router), so the calibrated confidence barely moves."""
    logits = torch.tensor([[-2.0], [-1.0], [1.0], [2.0], [-2.0], [-1.0], [1.0], [2.0]])
    labels = torch.tensor([[1.0], [0.0], [0.0], [1.0], [0.0], [1.0], [1.0], [0.0]])
    calibration = PlattCalibration.fit(logits, labels, torch.ones_like(labels), ["m"])
    assert calibration.a["m"] < 1e-3
    probs = calibration.apply(logits, ["m"])
    assert float(probs.max() - probs.min()) < CONSTANT_CONFIDENCE_SPREAD


# --- old routers, CLI -------------------------------------------------------------------


def test_a_router_saved_before_the_calibration_split_still_loads(tmp_path: Path) -> None:
    """A router.json without ``calibration_fraction``, ``calibration_items`` or the
    per-model calibration fields (the format of the first routers) loads as before."""
    router = small_router()
    router.save(tmp_path / "r")
    meta = json.loads((tmp_path / "r" / "router.json").read_text())
    meta["training"] = {
        "seed": 0, "val_fraction": 0.2, "epochs": 100, "lr": 0.001,
        "hidden": 8, "dropout": 0.1, "weight_decay": 0.01, "batch_size": 32,
    }  # fmt: skip
    old_model = {
        "n": 8, "positive_rate": 0.375, "accuracy": 0.625,
        "precision": None, "recall": 0.0, "f1": 0.0,
    }  # fmt: skip
    meta["metrics"] = {
        "train_items": 32,
        "val_items": 8,
        "per_model": dict.fromkeys(router.models, old_model),
        "micro_accuracy": 0.8,
        "micro_f1": 0.7,
        "nll_raw": 0.9,
        "nll_calibrated": 0.4,
    }
    (tmp_path / "r" / "router.json").write_text(json.dumps(meta))
    loaded = QueryRouter.load(tmp_path / "r", WordHashEmbedder())
    texts = ["What is 2 + 2?", "Spell 'cat' backwards."]
    assert loaded.confidences(texts) == router.confidences(texts)
    assert loaded.metrics["val_items"] == 8
    assert "calibration_items" not in loaded.metrics


def test_cli_train_prints_split_sizes_and_constant_confidence(
    tmp_path: Path, cli_runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`system2 router train` prints the three split sizes, each model's slope and spread,
    and a warning for a model whose confidence is constant."""
    from system2.cli.main import app
    from workers.embedder import SentenceEmbedder

    monkeypatch.setattr(SentenceEmbedder, "load", staticmethod(lambda name: ConstantEmbedder()))
    labels = tmp_path / "labels.jsonl"
    write_labels(labels)
    args = ["router", "train", str(labels), "--out", str(tmp_path / "r"), "--epochs", "3"]
    result = cli_runner.invoke(app, [*args, "--calibration-fraction", "0.25"])
    assert result.exit_code == 0, result.output
    assert "8 held-out items; head trained on 22, calibrated on 10" in result.output
    assert "slope" in result.output
    assert "constant confidence for arith" in result.output
    assert "constant confidence for words" in result.output
    meta = json.loads((tmp_path / "r" / "router.json").read_text())
    assert meta["training"]["calibration_fraction"] == 0.25
    assert meta["metrics"]["calibration_items"] == 10

    result = cli_runner.invoke(app, [*args, "--calibration-folds", "4"])
    assert result.exit_code == 0, result.output
    assert "8 held-out items; head trained on 32, calibrated on the same 32 out of fold" in (
        " ".join(result.output.split())
    )
    meta = json.loads((tmp_path / "r" / "router.json").read_text())
    assert meta["training"]["calibration_folds"] == 4
    assert cli_runner.invoke(app, [*args, "--calibration-folds", "1"]).exit_code == 2


def test_cli_train_refuses_fractions_that_leave_nothing_to_train_on(
    tmp_path: Path, cli_runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Validation and calibration fractions summing to 1 or more are exit code 2."""
    from system2.cli.main import app
    from workers.embedder import SentenceEmbedder

    monkeypatch.setattr(SentenceEmbedder, "load", staticmethod(lambda name: ConstantEmbedder()))

    labels = tmp_path / "labels.jsonl"
    write_labels(labels)
    args = ["router", "train", str(labels), "--out", str(tmp_path / "r")]
    result = cli_runner.invoke(
        app, [*args, "--val-fraction", "0.5", "--calibration-fraction", "0.5"]
    )
    assert result.exit_code == 2
    assert "must be below 1" in result.output


# --- cross-fitted calibration -----------------------------------------------------------


def test_crossfit_calibrates_every_non_validation_item_out_of_fold() -> None:
    """With ``calibration_folds`` the validation items are the split's, every other item
    both trains the head and (scored out of fold) calibrates it; validation labels touch
    neither, and the returned head, trained on all of them, does not depend on the folds."""
    records = synthetic_labels()
    split = split_items(
        sorted({r["item"] for r in records}), seed=0, val_fraction=0.2, calibration_fraction=0.2
    )
    five, metrics = train_router(records, TopicEmbedder(), seed=0, epochs=20, calibration_folds=5)
    assert (metrics.train_items, metrics.calibration_items, metrics.val_items) == (32, 32, 8)
    assert five.training["calibration_folds"] == 5
    assert five.training["calibration_fraction"] is None

    flipped_val, val_metrics = train_router(
        _flip(records, split.validation), TopicEmbedder(), seed=0, epochs=20, calibration_folds=5
    )
    assert _same_head(flipped_val, five)
    assert flipped_val.calibration == five.calibration
    assert val_metrics.micro_accuracy == pytest.approx(1.0 - metrics.micro_accuracy)

    two, _ = train_router(records, TopicEmbedder(), seed=0, epochs=20, calibration_folds=2)
    assert _same_head(two, five)
    assert two.calibration != five.calibration


def test_crossfit_keeps_a_slope_where_a_small_calibration_split_loses_it() -> None:
    """On 10 learnable items a 20% calibration split is 2 items; cross-fitting calibrates on
    all 8 non-validation items and keeps the topic's slope."""
    records = [r for r in synthetic_labels() if int(r["item"][1:]) < 5]
    assert len({r["item"] for r in records}) == 10
    _, split_metrics = train_router(records, TopicEmbedder(), seed=1, epochs=30)
    assert split_metrics.calibration_items == 2
    assert split_metrics.constant_confidence == ["arith", "words"]
    with structlog.testing.capture_logs() as logs:
        _, metrics = train_router(records, TopicEmbedder(), seed=1, epochs=30, calibration_folds=4)
    assert metrics.calibration_items == 8
    assert not [e for e in logs if e["event"] == "router.train.constant_confidence"]
    assert all(m.calibration_slope > 1.0 for m in metrics.per_model.values())


@pytest.mark.parametrize("folds", [0, 1])
def test_crossfit_needs_two_folds(folds: int) -> None:
    with pytest.raises(ValueError, match="calibration_folds must be at least 2"):
        train_router(synthetic_labels(), TopicEmbedder(), calibration_folds=folds)
