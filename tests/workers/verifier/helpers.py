"""A token verifier on the tiny random Qwen2, and the naive scoring it must agree with."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from tests.workers.tiny_model import tiny_model
from workers.verifier import TokenVerifier, TrainableMode


def random_verifier(
    seed: int = 0,
    *,
    attn_implementation: str = "sdpa",
    trainable: TrainableMode = "head",
) -> TokenVerifier:
    """A verifier on ``tiny_model(seed)`` with a random (non-zero) head."""
    verifier = TokenVerifier.from_generator(
        tiny_model(seed), attn_implementation=attn_implementation, trainable=trainable
    )
    return randomize_head(verifier, seed + 100)


def randomize_head(verifier: TokenVerifier, seed: int) -> TokenVerifier:
    """``verifier`` with its (zero-initialised) head drawn from N(0, 1) under ``seed``, so
    its scores are not all zero."""
    torch.manual_seed(seed)
    with torch.no_grad():
        torch.nn.init.normal_(verifier.head.weight)
    return verifier


def naive_score(verifier: TokenVerifier, prefix: Sequence[int], candidate: int) -> float:
    """s(prefix, candidate): append the candidate, plain causal forward, no cache or mask."""
    with torch.no_grad():
        scores = verifier(torch.tensor([[*prefix, candidate]]))
    return float(scores[0, -1])


def naive_scores(
    verifier: TokenVerifier, prefix: Sequence[int], candidates: list[int]
) -> list[float]:
    """``naive_score`` of each candidate, as a batch of equal-length independent rows."""
    rows = torch.tensor([[*prefix, c] for c in candidates])
    with torch.no_grad():
        return [float(s) for s in verifier(rows)[:, -1]]
