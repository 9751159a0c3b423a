"""Step 3 of the latent pipeline: Token Assorted fine-tuning and its matched text-CoT
baseline.

Two arms, trained from the same base model on the same kept chains, in the same order,
with the same settings (``training.TrainSettings``: steps, epochs, optimiser):

* ``latent`` (Token Assorted): the base model's vocabulary is extended with one latent id
  per VQ-VAE code and the two delimiters (``workers.latent.extend_vocabulary``); example i
  replaces the first m chunks of its chain, m drawn for i by the ``ReplacementSchedule``
  (uniform over 0..chunks by default), with the codes the VQ-VAE gives them.
* ``text``: the same examples with m = 0 (the chain as text), on the base vocabulary.

Loss is the next-token cross-entropy on the target (chain of thought and answer), not the
prompt. Each arm is saved as an ordinary ``save_pretrained`` checkpoint the transformers
worker and vLLM load; the latent arm adds its ``latent_vocabulary.json`` and the VQ-VAE (in
``vqvae/``, to render codes as text). Each arm is a resumable step of its own.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

import structlog
import torch

from system2.pipelines.latent.encoding import ChainTokens
from system2.pipelines.latent.examples import LatentExample, latent_example
from system2.pipelines.latent.replacement import ReplacementSchedule, whole_chunks
from system2.pipelines.latent.steps import StepMarker, finished_step, write_step
from system2.pipelines.latent.training import (
    StepHook,
    TrainSettings,
    added_rows,
    pad_batch,
    run_training,
    trainable_parameters,
)
from system2.pipelines.latent.vqvae_step import load_vqvae
from workers.catalog import resolve
from workers.latent import ChunkVQVAE, LatentVocabulary, extend_vocabulary, save_latent_model

__all__ = ["ARMS", "Arm", "build_examples", "load_model", "run_finetune_arm"]

log = structlog.get_logger(__name__)

Arm = Literal["latent", "text"]
ARMS: tuple[Arm, ...] = ("latent", "text")
VQVAE_DIR = "vqvae"


def load_model(model: str | Path) -> tuple[Any, Any]:
    """(model, tokenizer) of a catalog name or checkpoint directory, in float32."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve(str(model))
    lm = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    return lm, AutoTokenizer.from_pretrained(path)


def build_examples(
    chains: Sequence[ChainTokens],
    arm: Arm,
    *,
    vqvae: ChunkVQVAE | None = None,
    schedule: ReplacementSchedule | None = None,
    vocabulary: LatentVocabulary | None = None,
) -> list[LatentExample]:
    """The arm's examples, example i from chain i (the text arm: m = 0 for each)."""
    if arm == "text":
        return [LatentExample(c.prompt_ids, c.cot_ids + c.answer_ids, 0) for c in chains]
    if vqvae is None or schedule is None or vocabulary is None:
        raise ValueError("the latent arm needs the VQ-VAE, a schedule and the vocabulary")
    return [
        latent_example(
            i,
            c.prompt_ids,
            c.cot_ids,
            c.answer_ids,
            vqvae=vqvae,
            schedule=schedule,
            vocabulary=vocabulary,
        )
        for i, c in enumerate(chains)
    ]


def _curve(losses: Sequence[float], points: int = 50) -> list[float]:
    """The loss curve, averaged into at most ``points`` points."""
    size = max(1, -(-len(losses) // points))
    return [
        sum(losses[i : i + size]) / len(losses[i : i + size]) for i in range(0, len(losses), size)
    ]


def run_finetune_arm(
    arm: Arm,
    chains: Sequence[ChainTokens],
    *,
    base_model: str,
    vqvae_dir: Path | str,
    out: Path | str,
    settings: TrainSettings,
    schedule: ReplacementSchedule,
    upstream: Mapping[str, Any],
    threads: int,
    force: bool = False,
    on_step: StepHook | None = None,
) -> StepMarker:
    """Fine-tune one arm into ``out`` (skipped when finished under the same config)."""
    if arm not in ARMS:
        raise ValueError(f"unknown arm {arm!r}: {', '.join(ARMS)}")
    config: dict[str, Any] = {
        "arm": arm,
        "base_model": base_model,
        "training": asdict(settings),
        "replacement": asdict(schedule) if arm == "latent" else None,
        **upstream,
    }
    done = finished_step(out, f"finetune-{arm}", config, force=force)
    if done is not None:
        log.info("latent.finetune.skipped", arm=arm, out=str(out))
        return done
    started = time.perf_counter()
    model, tokenizer = load_model(base_model)
    vocabulary = vqvae = None
    new_rows_from = None
    if arm == "latent":
        vqvae = load_vqvae(vqvae_dir)
        vocabulary = extend_vocabulary(
            model, tokenizer, vqvae.config.codebook_size, seed=settings.seed
        )
        new_rows_from = vocabulary.first_id
    examples = build_examples(chains, arm, vqvae=vqvae, schedule=schedule, vocabulary=vocabulary)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    parameters = trainable_parameters(model, settings, new_rows_from=new_rows_from)
    trainable = sum(p.numel() for p in parameters[0])
    if new_rows_from is not None and settings.mode == "last_layers":  # only the added rows
        trainable += sum((p.shape[0] - new_rows_from) * p.shape[1] for p in parameters[1])
    model.train()

    def loss_of(batch: Sequence[LatentExample]) -> torch.Tensor:
        ids, mask, labels = pad_batch([(e.input_ids, e.labels) for e in batch], pad)
        loss: torch.Tensor = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        return loss

    log.info("latent.finetune.start", arm=arm, examples=len(examples), trainable=trainable)
    trained = run_training(
        parameters,
        examples,
        settings,
        loss_of,
        new_rows=added_rows(model, new_rows_from),
        on_step=on_step,
    )
    model.eval()
    path = Path(out)
    if vocabulary is not None and vqvae is not None:
        vqvae.save(path / VQVAE_DIR)
        vocabulary = vocabulary.model_copy(
            update={"chunk_tokens": vqvae.config.chunk_tokens, "vqvae": VQVAE_DIR}
        )
        save_latent_model(model, tokenizer, vocabulary, path)
    else:
        model.save_pretrained(path)
        tokenizer.save_pretrained(path)
    chunks = (
        [len(whole_chunks(c.cot_ids, vqvae.config.chunk_tokens)) for c in chains] if vqvae else []
    )
    results = {
        "examples": len(examples),
        "epochs": settings.epochs,
        "steps": trained.steps,
        "trainable_parameters": trainable,
        "final_loss": trained.final_loss,
        "loss_curve": _curve(trained.losses),
        "target_tokens_mean": sum(len(e.target_ids) for e in examples) / len(examples),
        "replaced_chunks_mean": sum(e.m for e in examples) / len(examples),
        "replaced_share": sum(e.m for e in examples) / sum(chunks) if sum(chunks) else 0.0,
    }
    marker = write_step(
        path,
        f"finetune-{arm}",
        config,
        results,
        seconds=time.perf_counter() - started,
        threads=threads,
    )
    log.info("latent.finetune.done", arm=arm, out=str(out), steps=trained.steps)
    return marker
