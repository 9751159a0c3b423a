"""Latent reasoning at the model level: the chunk VQ-VAE and latent vocabularies of Token
Assorted (arXiv 2502.03275), continuous thoughts (Coconut, CODI arXiv 2502.21074), and what
a serving backend needs to run models that have them.

Training data (which chains of thought, which chunks get replaced) is made above, in
``system2.pipelines.latent``.
"""

from __future__ import annotations

from workers.latent.continuous import ThoughtProjection, Thoughts, last_hidden, run_thoughts
from workers.latent.quantizer import Quantized, VectorQuantizer
from workers.latent.serving import LatentCounts, LatentModel, ThoughtSettings, refuse_thoughts
from workers.latent.thought_budget import ThoughtBudget
from workers.latent.vocabulary import (
    END_LATENT,
    LATENT_FILE,
    START_LATENT,
    LatentVocabulary,
    embedding_tables,
    extend_vocabulary,
    latent_token,
    read_latent_vocabulary,
    save_latent_model,
)
from workers.latent.vqvae import ChunkVQVAE, VQVAEConfig, VQVAELoss
from workers.latent.vqvae_train import (
    Reconstruction,
    VQVAEReport,
    VQVAETraining,
    reconstruction,
    train_vqvae,
)

__all__ = [
    "END_LATENT",
    "LATENT_FILE",
    "START_LATENT",
    "ChunkVQVAE",
    "LatentCounts",
    "LatentModel",
    "LatentVocabulary",
    "Quantized",
    "Reconstruction",
    "ThoughtBudget",
    "ThoughtProjection",
    "ThoughtSettings",
    "Thoughts",
    "VQVAEConfig",
    "VQVAELoss",
    "VQVAEReport",
    "VQVAETraining",
    "VectorQuantizer",
    "embedding_tables",
    "extend_vocabulary",
    "last_hidden",
    "latent_token",
    "read_latent_vocabulary",
    "reconstruction",
    "refuse_thoughts",
    "run_thoughts",
    "save_latent_model",
    "train_vqvae",
]
