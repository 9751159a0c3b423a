"""Token Assorted training data (arXiv 2502.03275): chunking chains of thought for the
VQ-VAE, the randomised replacement of their first m chunks by latent codes, and the
fine-tuning examples built from them. The models themselves live in ``workers.latent``.
"""

from __future__ import annotations

from system2.pipelines.latent.examples import LatentExample, chunk_matrix, latent_example
from system2.pipelines.latent.replacement import (
    ReplacementSchedule,
    replace_chunks,
    whole_chunks,
)

__all__ = [
    "LatentExample",
    "ReplacementSchedule",
    "chunk_matrix",
    "latent_example",
    "replace_chunks",
    "whole_chunks",
]
