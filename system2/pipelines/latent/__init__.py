"""Token Assorted and continuous-thought training (arXiv 2502.03275, arXiv 2502.21074), as
resumable steps on this machine's scale; the models themselves live in ``workers.latent``.

1. ``chains``: chains of thought for training items, from the generator (checked against
   the gold answer) or the task's gold rationale.
2. ``vqvae_step``: the chunk VQ-VAE on the chains' chunks (``replacement.whole_chunks``,
   ``examples.chunk_matrix``).
3. ``finetune``: the base model with its vocabulary extended, fine-tuned on examples whose
   first m chunks are replaced (``replacement``, ``examples``), and the matched text-CoT
   fine-tune (m = 0) as the baseline.
4. ``codi``: a continuous-thought student distilled from the text-CoT fine-tune.

``encoding`` turns chains into token ids, ``training`` is the loop the fine-tunes and CODI
share, ``steps`` the markers that make each step resumable, ``layout`` where the steps
write under one directory.
"""

from __future__ import annotations

from system2.pipelines.latent.chains import (
    EVAL_SEEDS_FROM,
    ChainSource,
    chains_digest,
    check_training_seed,
    collect_chains,
    gold_chain,
    kept_chains,
    pending_items,
    read_chains,
)
from system2.pipelines.latent.codi import CodiLoss, codi_loss, run_codi_step, teacher_states
from system2.pipelines.latent.encoding import ChainTokens, encode_chain, encode_chains
from system2.pipelines.latent.examples import LatentExample, chunk_matrix, latent_example
from system2.pipelines.latent.finetune import (
    ARMS,
    Arm,
    build_examples,
    load_model,
    run_finetune_arm,
)
from system2.pipelines.latent.layout import PipelineLayout, TrainingChains
from system2.pipelines.latent.replacement import (
    ReplacementSchedule,
    replace_chunks,
    whole_chunks,
)
from system2.pipelines.latent.steps import (
    StepConfigMismatch,
    StepMarker,
    finished_step,
    read_step,
    write_step,
)
from system2.pipelines.latent.training import TrainingLog, TrainMode, TrainSettings
from system2.pipelines.latent.vqvae_step import (
    VQVAEStepSettings,
    codebook_for,
    load_vqvae,
    run_vqvae_step,
)

__all__ = [
    "ARMS",
    "EVAL_SEEDS_FROM",
    "Arm",
    "ChainSource",
    "ChainTokens",
    "CodiLoss",
    "LatentExample",
    "PipelineLayout",
    "ReplacementSchedule",
    "StepConfigMismatch",
    "StepMarker",
    "TrainMode",
    "TrainSettings",
    "TrainingChains",
    "TrainingLog",
    "VQVAEStepSettings",
    "build_examples",
    "chains_digest",
    "check_training_seed",
    "chunk_matrix",
    "codebook_for",
    "codi_loss",
    "collect_chains",
    "encode_chain",
    "encode_chains",
    "finished_step",
    "gold_chain",
    "kept_chains",
    "latent_example",
    "load_model",
    "load_vqvae",
    "pending_items",
    "read_chains",
    "read_step",
    "replace_chunks",
    "run_codi_step",
    "run_finetune_arm",
    "run_vqvae_step",
    "teacher_states",
    "whole_chunks",
    "write_step",
]
