"""The vector quantiser of the chunk VQ-VAE: nearest-code lookup, a straight-through
gradient, a commitment loss, and an EMA-updated codebook with dead-code restarts.

Forward: ``z`` ([rows, dim]) is replaced by its nearest code vector ``e``; the encoder gets
the decoder's gradient straight through (``z + (e - z).detach()``) and the commitment loss
``beta * ||z - sg(e)||^2`` keeps it near its code (van den Oord et al., 2017). The codebook
is not learned by gradient: in training each code moves to the exponential moving average
of the vectors assigned to it (decay ``decay``, Laplace-smoothed counts). On the first
training batch the codes are set to vectors of that batch, and a code no vector chose for
``restart_after`` training steps is moved to a random vector of the current batch, so codes
do not die on small data.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Quantized", "VectorQuantizer"]


class Quantized(NamedTuple):
    """What quantising a batch gives."""

    vectors: torch.Tensor  # [rows, dim], straight-through
    codes: torch.Tensor  # [rows]
    loss: torch.Tensor  # [], the commitment loss


class VectorQuantizer(nn.Module):
    """A codebook of ``size`` vectors of width ``dim`` (see the module docstring)."""

    codebook: torch.Tensor
    ema_count: torch.Tensor
    ema_sum: torch.Tensor
    unused_steps: torch.Tensor
    initialised: torch.Tensor

    def __init__(
        self,
        size: int,
        dim: int,
        *,
        commitment: float = 0.25,
        decay: float = 0.99,
        restart_after: int = 50,
        eps: float = 1e-5,
    ) -> None:
        super().__init__()
        if size < 1 or dim < 1:
            raise ValueError(f"a codebook needs size >= 1 and dim >= 1, got {size} x {dim}")
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        self.size, self.dim = size, dim
        self.commitment, self.decay, self.restart_after, self.eps = (
            commitment,
            decay,
            restart_after,
            eps,
        )
        self.register_buffer("codebook", torch.randn(size, dim))
        self.register_buffer("ema_count", torch.ones(size))
        self.register_buffer("ema_sum", self.codebook.clone())
        self.register_buffer("unused_steps", torch.zeros(size, dtype=torch.long))
        self.register_buffer("initialised", torch.zeros((), dtype=torch.bool))

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """The index of each row's nearest code (squared Euclidean distance)."""
        distances = (
            z.pow(2).sum(-1, keepdim=True)
            - 2 * z @ self.codebook.T
            + self.codebook.pow(2).sum(-1).unsqueeze(0)
        )
        return distances.argmin(-1)

    def forward(self, z: torch.Tensor) -> Quantized:
        flat = z.detach().float()
        if self.training:
            self._initialise_from(flat)
        codes = self.nearest(flat)
        if self.training:
            self._update(flat, codes)
        chosen = self.codebook[codes].to(z.dtype)
        loss = self.commitment * F.mse_loss(z, chosen.detach())
        return Quantized(z + (chosen - z).detach(), codes, loss)

    @torch.no_grad()
    def _initialise_from(self, z: torch.Tensor) -> None:
        if bool(self.initialised):
            return
        picks = torch.randint(len(z), (self.size,), device=z.device)
        jitter = 0.01 * z.std() * torch.randn(self.size, self.dim, device=z.device)
        self.codebook.copy_(z[picks] + jitter)
        self.ema_sum.copy_(self.codebook)
        self.ema_count.fill_(1.0)
        self.initialised.fill_(True)

    @torch.no_grad()
    def _update(self, z: torch.Tensor, codes: torch.Tensor) -> None:
        counts = torch.bincount(codes, minlength=self.size).to(z.dtype)
        sums = torch.zeros_like(self.ema_sum).index_add_(0, codes, z)
        self.ema_count.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.ema_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        total = self.ema_count.sum()
        smoothed = (self.ema_count + self.eps) / (total + self.size * self.eps) * total
        self.codebook.copy_(self.ema_sum / smoothed.unsqueeze(-1))
        self.unused_steps.add_(1).masked_fill_(counts > 0, 0)
        dead = (self.unused_steps >= self.restart_after).nonzero().squeeze(-1)
        if len(dead):
            picks = torch.randint(len(z), (len(dead),), device=z.device)
            self.codebook[dead] = z[picks]
            self.ema_sum[dead] = z[picks]
            self.ema_count[dead] = 1.0
            self.unused_steps[dead] = 0
