"""Training a ``ChunkVQVAE`` on given chunks of token ids, and measuring how well it
reconstructs them.

Seeded: the same chunks, settings and seed give the same weights (batches are drawn from
a ``torch.Generator`` of their own). The data (which chains of thought, cut how) is the
caller's: ``system2.pipelines.latent`` makes it.

Example:
    >>> report = train_vqvae(vqvae, chunks, VQVAETraining(steps=2000))  # doctest: +SKIP
    >>> report.token_accuracy  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from workers.latent.vqvae import ChunkVQVAE

__all__ = ["Reconstruction", "VQVAEReport", "VQVAETraining", "reconstruction", "train_vqvae"]

StepHook = Callable[[int, float], None]
"""Called with (step done, its loss) after every optimiser step, e.g. to move a progress bar."""


@dataclass(frozen=True, slots=True)
class VQVAETraining:
    steps: int = 2000
    batch_size: int = 64
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 0 or self.batch_size < 1 or self.learning_rate <= 0:
            raise ValueError(
                "VQVAETraining needs steps >= 0, batch_size >= 1 and learning_rate > 0, got "
                f"{self.steps}, {self.batch_size}, {self.learning_rate}"
            )


@dataclass(frozen=True, slots=True)
class Reconstruction:
    """How well decode(encode(chunk)) gives the chunk back."""

    token_accuracy: float  # share of tokens right
    chunk_accuracy: float  # share of chunks right in every token
    codes_used: int  # distinct codes the chunks were given


@dataclass(frozen=True, slots=True)
class VQVAEReport:
    steps: int
    final_loss: float
    reconstruction: Reconstruction


@torch.no_grad()
def reconstruction(
    model: ChunkVQVAE, chunks: torch.Tensor, batch_size: int = 512
) -> Reconstruction:
    """Token and chunk accuracy of ``decode(encode(chunks))`` (model left in eval mode)."""
    if not len(chunks):
        raise ValueError("no chunks to measure reconstruction on")
    model.eval()
    right_tokens, right_chunks, codes = 0, 0, set[int]()
    for start in range(0, len(chunks), batch_size):
        batch = chunks[start : start + batch_size]
        code = model.encode(batch)
        same = model.decode(code) == batch
        right_tokens += int(same.sum())
        right_chunks += int(same.all(-1).sum())
        codes.update(int(c) for c in code)
    return Reconstruction(
        token_accuracy=right_tokens / chunks.numel(),
        chunk_accuracy=right_chunks / len(chunks),
        codes_used=len(codes),
    )


def train_vqvae(
    model: ChunkVQVAE,
    chunks: torch.Tensor,
    training: VQVAETraining = VQVAETraining(),
    *,
    on_step: StepHook | None = None,
) -> VQVAEReport:
    """Train ``model`` in place on ``chunks`` ([rows, L] token ids) with AdamW; the codebook
    follows its EMA updates. Returns the last loss and the reconstruction of ``chunks``."""
    if chunks.dim() != 2 or not len(chunks):
        raise ValueError(f"chunks must be a non-empty [rows, L] tensor, got {list(chunks.shape)}")
    generator = torch.Generator().manual_seed(training.seed)
    optimiser = torch.optim.AdamW(
        model.parameters(), lr=training.learning_rate, weight_decay=training.weight_decay
    )
    model.train()
    loss_value = float("nan")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(training.seed)  # the quantiser's initial picks and restarts
        for step in range(training.steps):
            picks = torch.randint(len(chunks), (training.batch_size,), generator=generator)
            loss = model.loss(chunks[picks]).total
            optimiser.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            optimiser.step()
            loss_value = float(loss.detach())
            if on_step is not None:
                on_step(step + 1, loss_value)
    return VQVAEReport(training.steps, loss_value, reconstruction(model, chunks))
