"""SelectLLM's learned router: training, calibration, persistence, and the CLI that trains it
(the policy and its config: ``test_policy.py``)."""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from orchestrator.types import Query
from policies.selectllm.router import PlattCalibration, QueryRouter, RouterHead, RouterLoadError
from policies.selectllm.train import train_router
from system2.assembly import build_orchestrator
from system2.config import load_config

MATH = [
    "What is 17 + 25?", "Compute 8 times 7.", "How much is 144 divided by 12?",
    "Subtract 39 from 100.", "What is the sum of 3, 9 and 14?", "Multiply 23 by 4.",
    "What is 15 percent of 80?", "Add 250 and 375.", "What is 9 squared?",
    "Calculate 1000 minus 487.", "What is half of 68?", "How much is 6 times 12 plus 3?",
    "Divide 90 by 6.", "What is 7 cubed?", "What is 45 + 55 - 20?", "Compute 3 * 11 * 2.",
    "What is the product of 12 and 13?", "How much is 2 to the power 10?",
    "What is 81 divided by 9?", "Sum 11 and 29.",
]  # fmt: skip
WORDS = [
    "Spell the word 'house' backwards.", "How many vowels are in 'banana'?",
    "What is a synonym of 'happy'?", "Give the plural of 'mouse'.",
    "Which word rhymes with 'cat'?", "What is the opposite of 'cold'?",
    "Sort these words alphabetically: pear, apple, fig.", "What letter does 'zebra' start with?",
    "Is 'level' a palindrome?", "Write the word 'garden' in capital letters.",
    "What is the past tense of 'run'?", "Count the letters in 'elephant'.",
    "Name an antonym of 'ancient'.", "Which is longer: 'cat' or 'tiger'?",
    "Unscramble 'tca' into an English word.", "What is the first letter of 'orange'?",
    "Find a word that rhymes with 'moon'.", "What is the plural of 'child'?",
    "Give a synonym for 'quick'.", "How many syllables does 'computer' have?",
]  # fmt: skip


def synthetic_labels() -> list[dict[str, Any]]:
    """Model ``arith`` is right exactly on arithmetic questions, ``words`` on word questions."""
    records = []
    for prefix, texts, right in (("m", MATH, "arith"), ("w", WORDS, "words")):
        for i, text in enumerate(texts):
            for model, seconds in (("arith", 1.0), ("words", 2.0)):
                records.append(
                    {
                        "item": f"{prefix}{i}",
                        "model": model,
                        "question": text,
                        "label": int(model == right),
                        "seconds": seconds,
                        "completion_tokens": 10 if model == "arith" else 20,
                    }
                )
    return records


class WordHashEmbedder:
    """A scripted stand-in for MiniLM: words hashed (crc32) into 32 buckets, L2-normalised."""

    name = "word-hash"
    dim = 32

    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        rows = torch.zeros(len(texts), self.dim)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                rows[i, zlib.crc32(word.encode()) % self.dim] += 1.0
        return torch.nn.functional.normalize(rows, dim=1)


def small_router(models: tuple[str, ...] = ("arith", "words")) -> QueryRouter:
    torch.manual_seed(0)
    embedder = WordHashEmbedder()
    return QueryRouter(
        RouterHead(embedder.dim, 8, len(models)),
        embedder,
        models=models,
        latency=dict.fromkeys(models, 1.0),
        tokens=dict.fromkeys(models, 10.0),
        calibration=PlattCalibration(a=dict.fromkeys(models, 2.0), b=dict.fromkeys(models, -0.5)),
    )


# --- training ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def minilm(embedder_name: str) -> Any:
    from workers.embedder import SentenceEmbedder

    return SentenceEmbedder.load(embedder_name)


@pytest.mark.slow
def test_router_learns_which_model_suits_which_query(minilm: Any, tmp_path: Path) -> None:
    """On MiniLM embeddings the router separates arithmetic from word questions: high
    validation accuracy, and unseen queries go to the right model."""
    router, metrics = train_router(synthetic_labels(), minilm, seed=0, epochs=50)
    # 8 held-out items (2 labels each), fitted on neither the head nor the calibration: one
    # misrouted item costs 0.125; chance is 0.5.
    assert metrics.micro_accuracy >= 0.85
    assert (metrics.train_items, metrics.calibration_items, metrics.val_items) == (24, 8, 8)
    arithmetic, spelling = router.confidences(["What is 12 plus 30?", "Spell 'dog' backwards."])
    assert arithmetic["arith"] > 0.5 > arithmetic["words"]
    assert spelling["words"] > 0.5 > spelling["arith"]
    assert router.latency == {"arith": 1.0, "words": 2.0}
    assert router.tokens == {"arith": 10.0, "words": 20.0}


@pytest.mark.slow
def test_yaml_selectllm_config_runs_end_to_end(minilm: Any, tmp_path: Path) -> None:
    """A config naming a saved router builds (loading MiniLM by name) and routes a word
    question to the words model."""
    router, _ = train_router(synthetic_labels(), minilm, seed=0, epochs=50)
    router.save(tmp_path / "router")
    config = tmp_path / "selectllm.yaml"
    config.write_text(
        "models:\n"
        "  arith: {kind: scripted, responses: ['The answer is 1.']}\n"
        "  words: {kind: scripted, responses: ['The answer is dog.']}\n"
        "policy:\n"
        f"  kind: selectllm\n  models: [arith, words]\n  router: {tmp_path / 'router'}\n"
        "  rule: labelled_maxconf\n"
        "strategy: {kind: greedy}\n"
    )
    orch = build_orchestrator(load_config(config))
    answer = orch.answer_sync(Query(text="Spell 'god' backwards.", task="text"))
    assert answer.trace.plan["models"] == ["words"]
    assert answer.text == "The answer is dog."


def test_training_is_deterministic_for_a_seed() -> None:
    """The same records and seed give the same weights, calibration and metrics."""
    first, m1 = train_router(synthetic_labels(), WordHashEmbedder(), seed=3, epochs=5)
    second, m2 = train_router(synthetic_labels(), WordHashEmbedder(), seed=3, epochs=5)
    for a, b in zip(
        first.head.state_dict().values(), second.head.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)
    assert first.calibration == second.calibration
    assert m1 == m2


def test_training_masks_pairs_without_a_label() -> None:
    """A failed pair (label None) is left out of the loss and the metrics, not counted wrong."""
    records = synthetic_labels()
    for r in records:
        if r["model"] == "words" and r["item"].startswith("m"):
            r["label"] = None
    router, metrics = train_router(records, WordHashEmbedder(), seed=0, epochs=5)
    per_model = metrics.per_model
    assert per_model["arith"].n == metrics.val_items
    assert per_model["words"].n < metrics.val_items
    assert router.latency["words"] == 2.0


def test_training_refuses_a_model_without_labels() -> None:
    """A pool model with no usable label is an error naming it."""
    with pytest.raises(ValueError, match="extra"):
        train_router(synthetic_labels(), WordHashEmbedder(), models=("arith", "words", "extra"))


# --- calibration ------------------------------------------------------------------------


def test_calibration_is_bounded_and_monotone() -> None:
    """Fitted Platt scaling keeps probabilities inside (0, 1) and increasing in the logit."""
    logits = torch.tensor([[-2.0], [-1.0], [-0.5], [0.5], [1.0], [3.0]])
    labels = torch.tensor([[0.0], [0.0], [1.0], [0.0], [1.0], [1.0]])
    calibration = PlattCalibration.fit(logits, labels, torch.ones_like(labels), ["m"])
    assert calibration.a["m"] > 0
    grid = torch.linspace(-50, 50, 201).unsqueeze(1)
    probs = calibration.apply(grid, ["m"]).squeeze(1)
    assert bool(((probs > 0) & (probs < 1)).all())
    assert bool((probs[1:] >= probs[:-1]).all())
    middle = calibration.apply(torch.linspace(-3, 3, 61).unsqueeze(1), ["m"]).squeeze(1)
    assert bool((middle[1:] > middle[:-1]).all())


def test_calibration_of_an_always_right_model_stays_below_one() -> None:
    """A calibration split where a model is always right still gives finite parameters."""
    logits = torch.tensor([[0.5], [1.0], [2.0]])
    labels = torch.ones(3, 1)
    calibration = PlattCalibration.fit(logits, labels, torch.ones_like(labels), ["m"])
    probs = calibration.apply(logits, ["m"])
    assert bool((probs > 0.5).all())
    assert bool((probs < 1).all())


def test_calibration_without_validation_labels_is_identity() -> None:
    """A model with no known calibration label keeps its raw sigmoid."""
    mask = torch.zeros(2, 1)
    calibration = PlattCalibration.fit(torch.zeros(2, 1), torch.zeros(2, 1), mask, ["m"])
    assert calibration == PlattCalibration.identity(["m"])


# --- persistence ------------------------------------------------------------------------


def test_save_load_round_trip_gives_identical_confidences(tmp_path: Path) -> None:
    """A loaded router gives exactly the confidences of the saved one, with its metadata."""
    router = small_router()
    texts = ["What is 2 + 2?", "Spell 'cat' backwards."]
    router.save(tmp_path / "r")
    loaded = QueryRouter.load(tmp_path / "r", WordHashEmbedder())
    assert loaded.confidences(texts) == router.confidences(texts)
    assert (loaded.models, loaded.latency, loaded.tokens) == (
        router.models,
        router.latency,
        router.tokens,
    )
    meta = json.loads((tmp_path / "r" / "router.json").read_text())
    assert meta["format_version"] == 1
    assert meta["embedder"] == "word-hash"
    assert meta["calibration"]["method"] == "platt"


def _break_json(d: Path) -> None:
    (d / "router.json").write_text("{not json")


def _old_format(d: Path) -> None:
    meta = json.loads((d / "router.json").read_text())
    (d / "router.json").write_text(json.dumps({**meta, "format_version": 0}))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / "head.safetensors").unlink(), "missing head.safetensors"),
        (lambda d: (d / "router.json").unlink(), "missing router.json"),
        (_break_json, "unreadable"),
        (_old_format, "format_version 0"),
        (lambda d: (d / "head.safetensors").write_bytes(b"garbage"), "corrupt router"),
    ],
    ids=["no-weights", "no-meta", "bad-json", "old-format", "bad-weights"],
)
def test_load_refuses_a_damaged_router(tmp_path: Path, damage: Any, message: str) -> None:
    """A missing, corrupt or outdated router file is a RouterLoadError saying which."""
    small_router().save(tmp_path / "r")
    damage(tmp_path / "r")
    with pytest.raises(RouterLoadError, match=message):
        QueryRouter.load(tmp_path / "r", WordHashEmbedder())


def test_load_refuses_a_missing_directory_and_another_embedder(tmp_path: Path) -> None:
    """No directory, or an embedder other than the one trained on, is refused."""
    with pytest.raises(RouterLoadError, match="no router directory"):
        QueryRouter.load(tmp_path / "absent", WordHashEmbedder())
    small_router().save(tmp_path / "r")

    class OtherEmbedder(WordHashEmbedder):
        name = "other"

    with pytest.raises(RouterLoadError, match=r"'word-hash'.*'other'"):
        QueryRouter.load(tmp_path / "r", OtherEmbedder())


# --- CLI --------------------------------------------------------------------------------


def write_labels(path: Path) -> None:
    header = {"type": "header", "kind": "selectllm_labels", "models": ["arith", "words"]}
    lines = [header, *({"type": "label", **r} for r in synthetic_labels())]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


def test_cli_train_without_labels_exits_2(tmp_path: Path, cli_runner: CliRunner) -> None:
    """Training on a missing or label-less file is an error message and exit code 2."""
    from system2.cli.main import app

    result = cli_runner.invoke(
        app, ["router", "train", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "r")]
    )
    assert result.exit_code == 2
    assert "no labels" in result.output


@pytest.mark.slow
def test_cli_train_writes_a_router_and_prints_validation_metrics(
    tmp_path: Path, cli_runner: CliRunner
) -> None:
    """`system2 router train` saves a loadable router and prints per-model F1."""
    from system2.cli.main import app

    labels = tmp_path / "labels.jsonl"
    write_labels(labels)
    args = ["router", "train", str(labels), "--out", str(tmp_path / "r"), "--epochs", "30"]
    result = cli_runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "F1" in result.output
    assert "all (micro)" in result.output
    meta = json.loads((tmp_path / "r" / "router.json").read_text())
    assert meta["models"] == ["arith", "words"]
    assert meta["metrics"]["val_items"] == 8
