"""The latent pipeline's shared training loop: added embedding rows that step farther."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import torch
from torch import nn

from system2.pipelines.latent import TrainSettings
from system2.pipelines.latent.training import run_training


def _train(scale: float, new_rows: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """A 6-row table whose rows 4.. are "added", trained two steps toward a target; returns
    (start, end) weights."""
    torch.manual_seed(0)
    table = nn.Parameter(torch.randn(6, 3))
    start = table.detach().clone()
    target = torch.randn(6, 3)

    def loss_of(batch: Sequence[int]) -> torch.Tensor:
        return ((table - target) ** 2).sum()

    settings = TrainSettings(  # no clipping: it would couple the rows through the norm
        batch_size=1,
        max_steps=2,
        warmup_steps=0,
        learning_rate=1e-2,
        max_grad_norm=1e9,
        new_rows_step_scale=scale,
    )
    rows = [(table, 4)] if new_rows else []
    run_training(([table], []), [0, 1], settings, loss_of, new_rows=rows)
    return start, table.detach()


def test_added_rows_step_scale_times_as_far_and_the_rest_as_before() -> None:
    """With scale 10 the added rows move 10 times as far on the first step; every other row
    moves exactly as without the scale (AdamW's moments see the same gradients)."""
    start, plain = _train(1.0, new_rows=True)
    _, scaled = _train(10.0, new_rows=True)
    assert torch.equal(scaled[:4], plain[:4])
    plain_move = (plain[4:] - start[4:]).abs().sum()
    scaled_move = (scaled[4:] - start[4:]).abs().sum()
    assert scaled_move > 5 * plain_move
    _, no_rows = _train(10.0, new_rows=False)
    assert torch.equal(no_rows, plain)


def test_step_scale_must_be_positive() -> None:
    with pytest.raises(ValueError, match="new_rows_step_scale must be > 0"):
        TrainSettings(new_rows_step_scale=0.0)
