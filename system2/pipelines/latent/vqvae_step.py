"""Step 2 of the latent pipeline: the chunk VQ-VAE trained on the chains' chunks.

The chunks are every whole chunk of L tokens of every kept chain's reasoning (not its
answer, which stays text). The paper's defaults are L = 16 and 1024 codes; on small data
the codebook shrinks by one rule (``codebook_for``): at most one code per
``CHUNKS_PER_CODE`` (4) chunks, so the average code is trained on several chunks instead
of memorising one, i.e. ``min(requested, max(1, chunks // 4))``. 2,000 chains of
GSM-Symbolic give about 10,800 chunks, so the full 1024 codes.

The step writes the VQ-VAE (``ChunkVQVAE.save``) and its marker (``steps``) to its
directory, with the reconstruction of the training chunks (token and chunk accuracy,
codes used) in the marker's results.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import structlog

from system2.pipelines.latent.encoding import ChainTokens
from system2.pipelines.latent.examples import chunk_matrix
from system2.pipelines.latent.steps import StepMarker, finished_step, read_step, write_step
from workers.latent import ChunkVQVAE, VQVAEConfig, VQVAETraining, train_vqvae

__all__ = [
    "CHUNKS_PER_CODE",
    "VQVAEStepSettings",
    "codebook_for",
    "load_vqvae",
    "run_vqvae_step",
]

log = structlog.get_logger(__name__)

CHUNKS_PER_CODE = 4
STEP = "vqvae"


@dataclass(frozen=True, slots=True)
class VQVAEStepSettings:
    """The VQ-VAE's shape (paper defaults for L and the codebook) and its training."""

    chunk_tokens: int = 16
    codebook_size: int = 1024  # the most codes; fewer on small data (``codebook_for``)
    dim: int = 128
    layers: int = 2
    heads: int = 4
    steps: int = 2000
    batch_size: int = 64
    learning_rate: float = 1e-3
    seed: int = 0

    def __post_init__(self) -> None:
        if self.chunk_tokens < 1 or self.codebook_size < 1:
            raise ValueError(
                f"chunk_tokens and codebook_size must be >= 1, got {self.chunk_tokens}, "
                f"{self.codebook_size}"
            )


def codebook_for(requested: int, chunks: int) -> int:
    """Codes for ``chunks`` training chunks: at most ``requested``, at most one per
    ``CHUNKS_PER_CODE`` chunks, at least 1."""
    return min(requested, max(1, chunks // CHUNKS_PER_CODE))


def run_vqvae_step(
    chains: Sequence[ChainTokens],
    *,
    vocab_size: int,
    out: Path | str,
    settings: VQVAEStepSettings,
    upstream: Mapping[str, Any],
    threads: int,
    force: bool = False,
    on_step: Callable[[int, float], None] | None = None,
) -> StepMarker:
    """Train (or, when finished under the same config, skip) the VQ-VAE on the chains'
    chunks; ``upstream`` (e.g. the chains' fingerprint and the tokenizer) joins the config."""
    config = {**asdict(settings), **upstream, "vocab_size": vocab_size}
    done = finished_step(out, STEP, config, force=force)
    if done is not None:
        log.info("latent.vqvae.skipped", out=str(out), reason="finished under this config")
        return done
    chunks = chunk_matrix((c.cot_ids for c in chains), settings.chunk_tokens)
    codes = codebook_for(settings.codebook_size, len(chunks))
    model = ChunkVQVAE(
        VQVAEConfig(
            vocab_size=vocab_size,
            chunk_tokens=settings.chunk_tokens,
            codebook_size=codes,
            dim=settings.dim,
            layers=settings.layers,
            heads=settings.heads,
        ),
        seed=settings.seed,
    )
    log.info("latent.vqvae.start", chunks=len(chunks), codebook=codes, steps=settings.steps)
    started = time.perf_counter()
    report = train_vqvae(
        model,
        chunks,
        VQVAETraining(
            steps=settings.steps,
            batch_size=settings.batch_size,
            learning_rate=settings.learning_rate,
            seed=settings.seed,
        ),
        on_step=on_step,
    )
    model.save(out)
    results = {
        "chains": len(chains),
        "chunks": len(chunks),
        "codebook_size": codes,
        "final_loss": report.final_loss,
        **asdict(report.reconstruction),
    }
    marker = write_step(
        out, STEP, config, results, seconds=time.perf_counter() - started, threads=threads
    )
    log.info("latent.vqvae.done", out=str(out), **results)
    return marker


def load_vqvae(out: Path | str) -> ChunkVQVAE:
    """The VQ-VAE of a finished step (ValueError when the step has not finished)."""
    marker = read_step(out)
    if marker is None or marker.step != STEP:
        raise ValueError(f"{out}: the vqvae step has not finished (run `system2 latent vqvae`)")
    return ChunkVQVAE.load(out)
