"""The chunk VQ-VAE of Token Assorted (arXiv 2502.03275): one discrete code per chunk of L
text tokens.

Encoder: the chunk's tokens are embedded (a table of the VQ-VAE's own, ``dim`` wide), given
learned positions, run through a small bidirectional transformer and mean-pooled into one
vector, which ``workers.latent.quantizer.VectorQuantizer`` snaps to the nearest of
``codebook_size`` codes. Decoder: L learned position queries plus the code vector, through
a second small transformer, give logits over the text vocabulary at each of the L positions;
training minimises their cross-entropy against the chunk plus the commitment loss.

The paper's defaults are L = 16 and a 1024-code codebook. Unlike the paper's VQ-VAE, which
also reads the question, this one sees the chunk alone, so a code means the same text
wherever it appears (and ``decode`` can render a code without its context).

Example:
    >>> vqvae = ChunkVQVAE(VQVAEConfig(vocab_size=49152))  # doctest: +SKIP
    >>> codes = vqvae.encode(chunks)  # [rows, 16] token ids -> [rows] codes  # doctest: +SKIP
    >>> tokens = vqvae.decode(codes)  # [rows] codes -> [rows, 16] token ids  # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from safetensors.torch import load_file, save_file
from torch import nn

from workers.latent.quantizer import VectorQuantizer

__all__ = ["CONFIG_FILE", "WEIGHTS_FILE", "ChunkVQVAE", "VQVAEConfig", "VQVAELoss"]

CONFIG_FILE = "vqvae_config.json"
WEIGHTS_FILE = "vqvae.safetensors"


class VQVAEConfig(BaseModel):
    """The VQ-VAE's shape and loss settings (paper defaults for L and the codebook)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    vocab_size: int = Field(ge=2, description="the text tokenizer's vocabulary size")
    chunk_tokens: int = Field(default=16, ge=1, description="L: text tokens per code")
    codebook_size: int = Field(default=1024, ge=1)
    dim: int = Field(default=128, ge=8)
    layers: int = Field(default=2, ge=1, description="transformer layers in each of enc/dec")
    heads: int = Field(default=4, ge=1)
    commitment: float = Field(default=0.25, ge=0.0)
    ema_decay: float = Field(default=0.99, ge=0.0, lt=1.0)
    restart_after: int = Field(default=50, ge=1, description="steps before a dead code restarts")


class VQVAELoss(NamedTuple):
    """One training forward's losses and the codes it chose."""

    total: torch.Tensor
    reconstruction: torch.Tensor
    commitment: torch.Tensor
    codes: torch.Tensor


def _transformer(config: VQVAEConfig) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(
        config.dim,
        config.heads,
        dim_feedforward=4 * config.dim,
        dropout=0.0,
        batch_first=True,
        norm_first=True,
    )
    return nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False)


class ChunkVQVAE(nn.Module):
    """Chunks of ``config.chunk_tokens`` token ids to codes and back."""

    def __init__(self, config: VQVAEConfig, *, seed: int | None = None) -> None:
        super().__init__()
        if config.dim % config.heads:
            raise ValueError(f"dim {config.dim} is not a multiple of heads {config.heads}")
        self.config = config
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            self.token_embedding = nn.Embedding(config.vocab_size, config.dim)
            self.encoder_positions = nn.Parameter(
                0.02 * torch.randn(config.chunk_tokens, config.dim)
            )
            self.encoder = _transformer(config)
            self.to_latent = nn.Sequential(
                nn.LayerNorm(config.dim), nn.Linear(config.dim, config.dim)
            )
            self.quantizer = VectorQuantizer(
                config.codebook_size,
                config.dim,
                commitment=config.commitment,
                decay=config.ema_decay,
                restart_after=config.restart_after,
            )
            self.decoder_queries = nn.Parameter(0.02 * torch.randn(config.chunk_tokens, config.dim))
            self.decoder = _transformer(config)
            self.to_tokens = nn.Sequential(
                nn.LayerNorm(config.dim), nn.Linear(config.dim, config.vocab_size)
            )

    def _check_chunks(self, chunks: torch.Tensor) -> None:
        if chunks.dim() != 2 or chunks.shape[1] != self.config.chunk_tokens:
            raise ValueError(
                f"chunks must be [rows, {self.config.chunk_tokens}] token ids, got "
                f"{list(chunks.shape)}"
            )
        if len(chunks) and (chunks.min() < 0 or chunks.max() >= self.config.vocab_size):
            raise ValueError(f"chunk token ids must lie in 0..{self.config.vocab_size - 1}")

    def embed(self, chunks: torch.Tensor) -> torch.Tensor:
        """The encoder's continuous vector for each chunk ([rows, dim]), before quantising."""
        self._check_chunks(chunks)
        hidden = self.encoder(self.token_embedding(chunks) + self.encoder_positions)
        latent: torch.Tensor = self.to_latent(hidden.mean(1))
        return latent

    def logits(self, vectors: torch.Tensor) -> torch.Tensor:
        """Token logits [rows, L, vocab] reconstructed from code vectors [rows, dim]."""
        hidden = self.decoder(self.decoder_queries.unsqueeze(0) + vectors.unsqueeze(1))
        logits: torch.Tensor = self.to_tokens(hidden)
        return logits

    def loss(self, chunks: torch.Tensor) -> VQVAELoss:
        """Reconstruction cross-entropy plus commitment loss on a batch of chunks (in
        training mode this also moves the codebook, see ``VectorQuantizer``)."""
        quantized = self.quantizer(self.embed(chunks))
        logits = self.logits(quantized.vectors)
        reconstruction = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), chunks.reshape(-1))
        return VQVAELoss(
            reconstruction + quantized.loss, reconstruction, quantized.loss, quantized.codes
        )

    @torch.no_grad()
    def encode(self, chunks: torch.Tensor) -> torch.Tensor:
        """The code of each chunk: [rows, L] token ids -> [rows] codes."""
        return self.quantizer.nearest(self.embed(chunks).float())

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """The most likely tokens of each code: [rows] codes -> [rows, L] token ids."""
        if codes.dim() != 1:
            raise ValueError(f"codes must be 1-D, got shape {list(codes.shape)}")
        if len(codes) and (codes.min() < 0 or codes.max() >= self.config.codebook_size):
            raise ValueError(f"codes must lie in 0..{self.config.codebook_size - 1}")
        vectors = self.quantizer.codebook[codes]
        return self.logits(vectors).argmax(-1)

    def save(self, directory: str | Path) -> Path:
        """Write the config and weights to ``directory``; returns it."""
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        (path / CONFIG_FILE).write_text(self.config.model_dump_json(indent=2) + "\n")
        state = {k: v.detach().contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(path / WEIGHTS_FILE))
        return path

    @classmethod
    def load(cls, directory: str | Path) -> ChunkVQVAE:
        """A VQ-VAE written by ``save`` (in eval mode)."""
        path = Path(directory)
        try:
            config = VQVAEConfig.model_validate(json.loads((path / CONFIG_FILE).read_text()))
        except FileNotFoundError as exc:
            raise ValueError(f"{path} has no {CONFIG_FILE}: not a saved ChunkVQVAE") from exc
        except (ValidationError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path / CONFIG_FILE}: {exc}") from exc
        model = cls(config)
        model.load_state_dict(load_file(str(path / WEIGHTS_FILE)))
        return model.eval()
