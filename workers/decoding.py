"""A batched decode loop for a transformers causal LM, with per-row sampling settings.

Why not ``model.generate``: one batch here mixes rows from different requests (their own
temperature, top-p, max tokens, stop strings and seed), needs the raw log-prob of every
sampled token, and gives System-2 code a hook on the logits of every step.

The loop prefills each distinct prompt once (left-padded), copies its KV cache to the rows
that share it, then decodes one token per step for the rows still running, dropping finished
rows from the cache so their compute stops.

Hooks rewrite the logits before a token is chosen: ``logits_processor`` sees every
running row; ``guidance_processor`` (or ``hidden_guidance``, which also reads each row's
final-norm hidden state at the step, for a head on the generator's own trunk) sees only the
rows whose ``DecodeRow.guidance`` is set (with those settings), and the other rows' logits
are left exactly as they were. The model is asked for hidden states
(``output_hidden_states``) only when ``hidden_guidance`` is given. The log-probs reported
per token are always the model's own, taken before any hook.

A row cut at a stop string keeps only the tokens of its returned text: the tokens that lie
wholly at or after the stop string's start are dropped with their log-probs, so usage
counts what the caller gets. The token in which the returned text ends (a stop string that
starts inside a token) is kept, since part of it is text. An EOS token is kept (as vLLM
does): it was sampled, and it is why the row stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from transformers import DynamicCache

from workers.base import FinishReason, Guidance
from workers.latent.continuous import last_hidden, run_thoughts
from workers.latent.serving import ThoughtSettings
from workers.sampling import RowSampling, select_tokens
from workers.streaming import find_stop

__all__ = [
    "DecodeRow",
    "DecodedRow",
    "GuidanceProcessor",
    "HiddenGuidanceProcessor",
    "LogitsProcessor",
    "RowHook",
    "TokenHook",
    "decode_batch",
    "find_stop",
]


class LogitsProcessor(Protocol):
    """Rewrites next-token logits ([rows, vocab], float32) of the rows still decoding.

    ``sequences[i]`` holds row i's prompt and generated token ids so far.
    """

    def __call__(
        self, sequences: Sequence[Sequence[int]], logits: torch.Tensor
    ) -> torch.Tensor: ...


class GuidanceProcessor(Protocol):
    """Rewrites the logits ([rows, vocab], float32) of the guided rows only.

    ``sequences[i]`` holds guided row i's prompt and generated ids, ``settings[i]`` its
    ``Guidance``; rows may finish between calls, never join.
    """

    def __call__(
        self,
        sequences: Sequence[Sequence[int]],
        logits: torch.Tensor,
        settings: Sequence[Guidance],
    ) -> torch.Tensor: ...


class HiddenGuidanceProcessor(Protocol):
    """A ``GuidanceProcessor`` that also reads ``hidden`` ([rows, d]): each guided row's
    last hidden state at the step (after the final norm, what the LM head reads)."""

    def __call__(
        self,
        sequences: Sequence[Sequence[int]],
        logits: torch.Tensor,
        settings: Sequence[Guidance],
        hidden: torch.Tensor,
    ) -> torch.Tensor: ...


TokenHook = Callable[[int, int, float], bool]
"""Called with (row index in ``rows``, token id, its log-prob) for each token a row makes;
False ends that row at once (a stream whose reader left). See ``decode_batch``."""

RowHook = Callable[[int, "DecodedRow"], None]
"""Called with (row index in ``rows``, the decoded row) as soon as a row is finished."""


@dataclass(frozen=True, slots=True)
class DecodeRow:
    prompt_ids: tuple[int, ...]
    sampling: RowSampling
    max_tokens: int
    stop: tuple[str, ...] = ()
    seed: int | None = None
    guidance: Guidance | None = None
    thoughts: int = 0  # continuous thoughts before the text (workers.latent.continuous)


@dataclass(slots=True)
class DecodedRow:
    """A decoded row: ``token_ids``/``logprobs`` are the tokens of ``text`` (cut at a stop
    string, see the module docstring), plus EOS when the row ended with it."""

    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    text: str = ""
    finish_reason: FinishReason = "length"


def _left_pad(prompts: Sequence[tuple[int, ...]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, prompt in enumerate(prompts):
        ids[i, width - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
        mask[i, width - len(prompt) :] = 1
    return ids, mask


class _StopWatcher:
    """Checks stop strings on the decoded tail of a row, not the whole text every step."""

    def __init__(self, tokenizer: Any, stops: tuple[str, ...]) -> None:
        self._tokenizer = tokenizer
        self._stops = stops
        # A token decodes to at least one character, except byte pieces of one character:
        # a tail of (longest stop + 4) tokens always covers a freshly completed stop string.
        self._window = max((len(s) for s in stops), default=0) + 4

    def hit(self, token_ids: list[int]) -> bool:
        if not self._stops:
            return False
        tail = self._tokenizer.decode(token_ids[-self._window :], skip_special_tokens=True)
        return find_stop(tail, self._stops) is not None


@torch.inference_mode()
def decode_batch(
    model: Any,
    tokenizer: Any,
    rows: Sequence[DecodeRow],
    *,
    eos_token_ids: frozenset[int],
    pad_token_id: int,
    logits_processor: LogitsProcessor | None = None,
    guidance_processor: GuidanceProcessor | None = None,
    hidden_guidance: HiddenGuidanceProcessor | None = None,
    on_token: TokenHook | None = None,
    on_row_done: RowHook | None = None,
    thought_settings: ThoughtSettings | None = None,
) -> list[DecodedRow]:
    """Decode every row to completion (EOS, a stop string, or ``max_tokens``).

    Rows with ``guidance`` need a ``guidance_processor`` or a ``hidden_guidance`` (one of
    the two; ValueError otherwise).
    ``on_token`` sees each token as it is chosen; a row it ends is dropped from the batch
    (its compute stops) and comes back with the tokens it had (finish reason ``length``).
    ``on_row_done`` gets each row, final, the moment it finishes (the batch decodes on).
    Rows with ``thoughts`` run that many continuous thoughts right after the prefill
    (``workers.latent.continuous.run_thoughts``, with ``thought_settings``).
    """
    if not rows:
        return []
    if guidance_processor is not None and hidden_guidance is not None:
        raise ValueError("give a guidance_processor or a hidden_guidance, not both")
    guide = guidance_processor or hidden_guidance
    if guide is None and any(r.guidance is not None for r in rows):
        raise ValueError("rows ask for guidance but no guidance_processor was given")
    hidden_states = hidden_guidance is not None
    extra: dict[str, Any] = {"output_hidden_states": True} if hidden_states else {}
    thinking = any(r.thoughts for r in rows)
    prefill_extra = {**extra, "output_hidden_states": True} if thinking else extra
    distinct = list(dict.fromkeys(r.prompt_ids for r in rows))
    source = torch.tensor([distinct.index(r.prompt_ids) for r in rows], dtype=torch.long)

    ids, mask = _left_pad(distinct, pad_token_id)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    cache = DynamicCache(config=model.config)
    out = model(
        input_ids=ids,
        attention_mask=mask,
        position_ids=positions,
        past_key_values=cache,
        use_cache=True,
        logits_to_keep=1,
        **prefill_extra,
    )
    cache.batch_select_indices(source)
    logits = out.logits[source, -1, :].float()
    hidden = out.hidden_states[-1][source, -1, :] if hidden_states else None
    mask = mask[source]
    next_position = positions[source, -1] + 1
    if thinking:
        settings = thought_settings or ThoughtSettings()
        thought = run_thoughts(
            model,
            cache,
            hidden=last_hidden(out)[source],
            logits=logits,
            mask=mask,
            next_position=next_position,
            steps=[r.thoughts for r in rows],
            projection=settings.projection,
            start_token_id=settings.start_token_id,
            end_token_id=settings.end_token_id,
        )
        logits, mask, next_position = thought.logits, thought.mask, thought.next_position
        hidden = thought.hidden if hidden is not None else None

    results = [DecodedRow() for _ in rows]
    watchers = [_StopWatcher(tokenizer, r.stop) for r in rows]
    generators = [_generator(r) for r in rows]
    active = list(range(len(rows)))  # row indices still decoding, in cache order

    while active:
        logprobs = torch.log_softmax(logits, dim=-1)
        if logits_processor is not None:
            sequences = [rows[i].prompt_ids + tuple(results[i].token_ids) for i in active]
            logits = logits_processor(sequences, logits)
        if guide is not None:
            logits = _guide(
                guidance_processor, hidden_guidance, rows, results, active, logits, hidden
            )
        chosen = select_tokens(
            logits, [rows[i].sampling for i in active], [generators[i] for i in active]
        )
        chosen_logprobs = logprobs.gather(-1, chosen.unsqueeze(-1)).squeeze(-1)

        keep: list[int] = []
        for slot, row_index in enumerate(active):
            result, token = results[row_index], int(chosen[slot])
            result.token_ids.append(token)
            result.logprobs.append(float(chosen_logprobs[slot]))
            if on_token is not None and not on_token(row_index, token, result.logprobs[-1]):
                result.finish_reason = "length"
            elif token in eos_token_ids or watchers[row_index].hit(result.token_ids):
                result.finish_reason = "stop"
            elif len(result.token_ids) >= rows[row_index].max_tokens:
                result.finish_reason = "length"
            else:
                keep.append(slot)
                continue
            _finish(tokenizer, rows[row_index], result)
            if on_row_done is not None:
                on_row_done(row_index, result)
        if not keep:
            break
        if len(keep) < len(active):
            index = torch.tensor(keep, dtype=torch.long)
            cache.batch_select_indices(index)
            chosen, mask, next_position = chosen[index], mask[index], next_position[index]
            active = [active[slot] for slot in keep]
        mask = torch.cat([mask, torch.ones((len(active), 1), dtype=torch.long)], dim=-1)
        out = model(
            input_ids=chosen.unsqueeze(-1),
            attention_mask=mask,
            position_ids=next_position.unsqueeze(-1),
            past_key_values=cache,
            use_cache=True,
            **extra,
        )
        logits = out.logits[:, -1, :].float()
        hidden = out.hidden_states[-1][:, -1, :] if hidden_states else None
        next_position = next_position + 1

    return results


def _finish(tokenizer: Any, row: DecodeRow, result: DecodedRow) -> None:
    """A finished row's text, cut at its first stop string (and its tokens to the text)."""
    text = tokenizer.decode(result.token_ids, skip_special_tokens=True)
    cut = find_stop(text, row.stop)
    result.text = text if cut is None else text[:cut]
    if cut is not None:
        _trim_to_text(tokenizer, result)


def _trim_to_text(tokenizer: Any, result: DecodedRow) -> None:
    """Drop the trailing tokens (and log-probs) that ``result.text`` does not need: the
    shortest prefix of the tokens whose decoded text starts with it stays. The stop string
    completed in the last token, so only its few tokens are walked back over."""
    keep = len(result.token_ids)
    while keep > 0 and tokenizer.decode(
        result.token_ids[: keep - 1], skip_special_tokens=True
    ).startswith(result.text):
        keep -= 1
    del result.token_ids[keep:], result.logprobs[keep:]


def _guide(
    processor: GuidanceProcessor | None,
    hidden_processor: HiddenGuidanceProcessor | None,
    rows: Sequence[DecodeRow],
    results: Sequence[DecodedRow],
    active: Sequence[int],
    logits: torch.Tensor,
    hidden: torch.Tensor | None,
) -> torch.Tensor:
    """Run the guidance processor on the guided rows' logits (and hidden states, for
    ``hidden_processor``); every other row's are left untouched."""
    slots = [slot for slot, i in enumerate(active) if rows[i].guidance is not None]
    if not slots:
        return logits
    sequences = [rows[active[s]].prompt_ids + tuple(results[active[s]].token_ids) for s in slots]
    settings = [g for s in slots if (g := rows[active[s]].guidance) is not None]
    index = torch.tensor(slots, dtype=torch.long, device=logits.device)
    guided = logits.clone()
    if hidden_processor is not None and hidden is not None:
        guided[index] = hidden_processor(sequences, logits[index], settings, hidden[index])
    elif processor is not None:
        guided[index] = processor(sequences, logits[index], settings)
    return guided


def _generator(row: DecodeRow) -> torch.Generator | None:
    if row.sampling.temperature == 0.0:
        return None
    generator = torch.Generator()
    if row.seed is None:
        generator.seed()
    else:
        generator.manual_seed(row.seed)
    return generator
