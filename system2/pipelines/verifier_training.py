"""Train a token verifier on a triplets file (``system2.pipelines.verifier_triplets``).

``prepare_training`` loads the generator in-process, packs each reference's triplets into
one training sequence (the prompt encoded as the generator read it), holds out whole items
for validation and builds the verifier of the asked ``kind``: ``llm2`` on a copy of the
generator's decoder, or ``trunk_head`` (a rank-``rank`` head on the generator's own hidden
states, the generator frozen); ``VerifierTraining.run`` trains it (Bradley-Terry,
``workers.verifier.train`` / ``workers.verifier.trunk_train``) and saves it with
``metrics.json``.
Set-up problems (a model that does not load, no triplets, a trainable mode the model does
not support) raise ``TrainingSetupError`` before any training starts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from workers.chat_prompt import encode_prompt
from workers.errors import CatalogError
from workers.transformers_worker import TransformersWorker
from workers.verifier import (
    VERIFIER_KINDS,
    TokenVerifier,
    TrainingExample,
    TrainingMetrics,
    TrainSettings,
    TrunkHead,
    VerifierKind,
    examples_from_records,
    split_by_item,
    train_trunk_head,
    train_verifier,
    write_metrics,
)

from .verifier_triplets import prompt_from_json

__all__ = [
    "NoTripletsError",
    "TrainingSetupError",
    "VerifierTraining",
    "prepare_training",
    "recorded_generator",
]

StepCallback = Callable[[int, int, float], None]
"""``on_step(step, steps, loss)``, called after every optimiser step."""


class TrainingSetupError(Exception):
    """The generator, the training data or the verifier could not be set up; the message
    says what went wrong (the cause is chained)."""


class NoTripletsError(TrainingSetupError):
    """The records hold no triplet to train on."""


def recorded_generator(header: Mapping[str, Any] | None) -> str | None:
    """The generator a triplets file was synthesized with, as its header records it."""
    generator = (header or {}).get("generator")
    return str(generator) if generator else None


@dataclass(frozen=True)
class VerifierTraining:
    """A verifier ready to train: built on the generator, with its train and validation
    examples and the settings to train with (a trunk head also keeps the generator, whose
    states it trains on and whose fingerprint it saves)."""

    verifier: TokenVerifier | TrunkHead
    train_set: list[TrainingExample]
    val_set: list[TrainingExample]
    settings: TrainSettings
    generator: Any = None

    def run(self, out: Path | str, *, on_step: StepCallback | None = None) -> TrainingMetrics:
        """Train the verifier, then save it and its metrics (``metrics.json``) into ``out``."""
        if isinstance(self.verifier, TrunkHead):
            metrics: TrainingMetrics = train_trunk_head(
                self.verifier,
                self.generator,
                self.train_set,
                self.val_set,
                self.settings,
                on_step=on_step,
            )
            self.verifier.save(out, generator=self.generator)
        else:
            metrics = train_verifier(
                self.verifier, self.train_set, self.val_set, self.settings, on_step=on_step
            )
            self.verifier.save(out)
        write_metrics(metrics, out)
        return metrics


def prepare_training(
    records: Iterable[Mapping[str, Any]],
    generator: str,
    settings: TrainSettings,
    *,
    threads: int | None = None,
    kind: VerifierKind = "llm2",
    rank: int = 16,
) -> VerifierTraining:
    """Load ``generator`` (a catalog name or a local directory), build the examples from
    the triplets file's item ``records`` and the verifier of ``kind`` to train on them
    (``rank``: the trunk head's)."""
    if kind not in VERIFIER_KINDS:
        raise TrainingSetupError(f"unknown verifier kind {kind!r}: {', '.join(VERIFIER_KINDS)}")
    try:
        worker = TransformersWorker.load(generator, threads=threads)
    except (CatalogError, OSError) as exc:
        raise TrainingSetupError(str(exc)) from exc
    tokenizer = worker.tokenizer
    examples = examples_from_records(
        list(records), lambda p: encode_prompt(tokenizer, prompt_from_json(p))
    )
    if not examples:
        raise NoTripletsError("no triplets to train on")
    train_set, val_set = split_by_item(examples, settings.val_fraction, settings.seed)
    torch.manual_seed(settings.seed)
    if kind == "trunk_head":
        try:
            head = TrunkHead.from_generator(
                worker.model, rank=rank, base_model=generator, seed=settings.seed
            )
        except ValueError as exc:
            raise TrainingSetupError(str(exc)) from exc
        return VerifierTraining(head, train_set, val_set, settings, worker.model)
    try:
        verifier = TokenVerifier.from_generator(
            worker.model,
            trainable=settings.mode,
            trainable_layers=settings.trainable_layers,
            lora_rank=settings.lora_rank,
            base_model=generator,
        )
    except (ImportError, ValueError) as exc:
        raise TrainingSetupError(str(exc)) from exc
    return VerifierTraining(verifier, train_set, val_set, settings)
