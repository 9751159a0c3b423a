"""Continuous thoughts (Coconut arXiv 2412.06769, CODI arXiv 2502.21074): after the prompt,
the model takes k steps whose input is not a token but its own last hidden state (through
an optional projection), then decodes text as usual.

``run_thoughts`` is the loop, run on a batch right after the prefill with the same KV cache:
row i takes ``steps[i]`` thoughts. Each step feeds ``projection(h)`` as ``inputs_embeds``,
where h is the row's final-layer hidden state at its last position (``hidden_states[-1]``,
after the final norm, which is what the LM head reads). With ``start_token_id`` the start
delimiter is fed as a token before the thoughts, with ``end_token_id`` the end delimiter
after them. The logits for the first text token come from the last of these forward passes
(rows without thoughts keep their prefill logits and feed no delimiters).

Rows with fewer thoughts than the batch's most sit out the first steps: their input there is
masked out of attention (and does not advance their positions), so each row computes
exactly what it would alone. ``ThoughtProjection`` is CODI's projection (two linear layers
with a GELU, then a LayerNorm); without one, the hidden state is fed back as it is
(Coconut).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
from safetensors.torch import load_file, save_file
from torch import nn

__all__ = ["ThoughtProjection", "Thoughts", "last_hidden", "run_thoughts"]


class ThoughtProjection(nn.Module):
    """CODI's projection of a continuous thought: Linear, GELU, Linear, LayerNorm."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.layers = nn.Sequential(
            nn.Linear(hidden_size, hidden_size),
            nn.GELU(),
            nn.Linear(hidden_size, hidden_size),
            nn.LayerNorm(hidden_size),
        )

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        projected: torch.Tensor = self.layers(hidden)
        return projected

    def save(self, file: str | Path) -> Path:
        """Write the weights (safetensors) to ``file``; returns it."""
        path = Path(file)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file({k: v.detach().contiguous() for k, v in self.state_dict().items()}, str(path))
        return path

    @classmethod
    def load(cls, file: str | Path) -> ThoughtProjection:
        """A projection written by ``save`` (its width read from the weights; eval mode)."""
        state = load_file(str(file))
        if "layers.0.weight" not in state:
            raise ValueError(f"{file} holds no ThoughtProjection weights")
        projection = cls(int(state["layers.0.weight"].shape[1]))
        projection.load_state_dict(state)
        return projection.eval()


class Thoughts(NamedTuple):
    """The batch after its thoughts: next-token logits, the attention mask, each row's next
    position (as the decode loop continues from them) and the last hidden state whose
    logits those are."""

    logits: torch.Tensor
    mask: torch.Tensor
    next_position: torch.Tensor
    hidden: torch.Tensor


def last_hidden(output: Any) -> torch.Tensor:
    """Each row's final-layer hidden state at its last position, from a forward pass run
    with ``output_hidden_states=True`` ([rows, hidden])."""
    if output.hidden_states is None:
        raise ValueError("the forward pass was run without output_hidden_states=True")
    hidden: torch.Tensor = output.hidden_states[-1][:, -1, :]
    return hidden


def run_thoughts(
    model: Any,
    cache: Any,
    *,
    hidden: torch.Tensor,
    logits: torch.Tensor,
    mask: torch.Tensor,
    next_position: torch.Tensor,
    steps: Sequence[int],
    projection: nn.Module | None = None,
    start_token_id: int | None = None,
    end_token_id: int | None = None,
) -> Thoughts:
    """Run ``steps[i]`` continuous thoughts for row i of a prefilled batch (see the module
    docstring), extending ``cache`` in place.

    ``hidden`` [rows, hidden] and ``logits`` [rows, vocab] are the prefill's last hidden
    states and next-token logits, ``mask`` [rows, length] its attention mask and
    ``next_position`` [rows] each row's next position id.
    """
    if len(steps) != len(hidden) or any(k < 0 for k in steps):
        raise ValueError(f"steps must give one count >= 0 per row ({len(hidden)}), got {steps}")
    most = max(steps, default=0)
    if most == 0:
        return Thoughts(logits, mask, next_position, hidden)
    counts = torch.tensor(steps, dtype=torch.long, device=mask.device)
    embed = model.get_input_embeddings()
    thinking = counts > 0
    if start_token_id is not None:
        output = _step(
            model, cache, _embed(embed, start_token_id, counts), thinking, mask, next_position
        )
        hidden = torch.where(thinking.unsqueeze(-1), last_hidden(output), hidden)
        mask, next_position = _advance(mask, next_position, thinking)
    for step in range(most):
        live = counts >= most - step  # right-aligned: a row's thoughts end at the last step
        inputs = hidden if projection is None else projection(hidden)
        output = _step(model, cache, inputs.to(embed.weight.dtype), live, mask, next_position)
        hidden = torch.where(live.unsqueeze(-1), last_hidden(output), hidden)
        logits = torch.where(live.unsqueeze(-1), output.logits[:, -1, :].float(), logits)
        mask, next_position = _advance(mask, next_position, live)
    if end_token_id is not None:
        output = _step(
            model, cache, _embed(embed, end_token_id, counts), thinking, mask, next_position
        )
        hidden = torch.where(thinking.unsqueeze(-1), last_hidden(output), hidden)
        logits = torch.where(thinking.unsqueeze(-1), output.logits[:, -1, :].float(), logits)
        mask, next_position = _advance(mask, next_position, thinking)
    return Thoughts(logits, mask, next_position, hidden)


def _embed(embed: Any, token_id: int, counts: torch.Tensor) -> torch.Tensor:
    """The input embedding of ``token_id`` for every row ([rows, hidden])."""
    ids = torch.full((len(counts),), token_id, dtype=torch.long, device=counts.device)
    embedded: torch.Tensor = embed(ids)
    return embedded


def _step(
    model: Any,
    cache: Any,
    inputs: torch.Tensor,
    live: torch.Tensor,
    mask: torch.Tensor,
    next_position: torch.Tensor,
) -> Any:
    """One forward pass of one input vector per row; rows not ``live`` are masked out."""
    column = live.to(mask.dtype).unsqueeze(-1)
    return model(
        inputs_embeds=inputs.unsqueeze(1),
        attention_mask=torch.cat([mask, column], dim=-1),
        position_ids=next_position.unsqueeze(-1),
        past_key_values=cache,
        use_cache=True,
        output_hidden_states=True,
    )


def _advance(
    mask: torch.Tensor, next_position: torch.Tensor, live: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    column = live.to(mask.dtype).unsqueeze(-1)
    return torch.cat([mask, column], dim=-1), next_position + live.to(next_position.dtype)
