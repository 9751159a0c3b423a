"""Shared-trunk heads on the tiny random Qwen2, and the naive scoring they must agree with."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from tests.workers.tiny_model import tiny_model
from workers.verifier import TrunkHead


def random_head(model: torch.nn.Module | None = None, *, rank: int = 4, seed: int = 0) -> TrunkHead:
    """A head for ``model`` (default ``tiny_model()``) with U drawn from N(0, 1), so its
    scores are not all zero."""
    head = TrunkHead.from_generator(model if model is not None else tiny_model(), rank=rank)
    torch.manual_seed(seed)
    with torch.no_grad():
        torch.nn.init.normal_(head.U)
    return head


def naive_trunk_score(
    head: TrunkHead, model: torch.nn.Module, prefix: Sequence[int], candidate: int
) -> float:
    """e_xᵀ U Vᵀ h for one candidate x, h read off a plain full forward over ``prefix``
    (``output_hidden_states``), e_x off the LM head, one candidate at a time."""
    with torch.no_grad():
        out = model(input_ids=torch.tensor([list(prefix)]), output_hidden_states=True)
        h = out.hidden_states[-1][0, -1].float()
        e = model.get_output_embeddings().weight[candidate].float()
        return float(e @ head.U @ head.V.T @ h)
