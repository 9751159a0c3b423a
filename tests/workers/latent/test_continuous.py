"""Continuous thoughts: the cached, batched loop against a step-by-step reference that
recomputes the whole sequence from input embeddings at every step (no KV cache)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.workers.latent.tiny_latent import EOS, PAD, char_tokenizer, tiny_llama
from workers.decoding import DecodeRow, decode_batch
from workers.latent import ThoughtProjection, ThoughtSettings, run_thoughts
from workers.latent.continuous import last_hidden
from workers.sampling import RowSampling

START, END = 30, 31  # any two token ids serve as delimiters for the arithmetic


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    return tiny_llama(len(char_tokenizer()))


def _projection(seed: int = 1) -> ThoughtProjection:
    torch.manual_seed(seed)
    return ThoughtProjection(32).eval()


@torch.no_grad()
def _reference(
    model: torch.nn.Module,
    prompt: list[int],
    thoughts: int,
    new_tokens: int,
    settings: ThoughtSettings,
) -> tuple[torch.Tensor, list[int]]:
    """The logits for the first text token, and ``new_tokens`` greedy tokens, computed by
    running the whole sequence of input embeddings again at every step."""
    embed = model.get_input_embeddings()
    sequence = [embed(torch.tensor(prompt))]

    def forward() -> torch.Tensor:
        out = model(inputs_embeds=torch.cat(sequence).unsqueeze(0), output_hidden_states=True)
        sequence_hidden.append(out.hidden_states[-1][0, -1])
        logits: torch.Tensor = out.logits[0, -1]
        return logits

    sequence_hidden: list[torch.Tensor] = []
    logits = forward()
    if thoughts:
        if settings.start_token_id is not None:
            sequence.append(embed(torch.tensor([settings.start_token_id])))
            logits = forward()
        for _ in range(thoughts):
            h = sequence_hidden[-1]
            fed = h if settings.projection is None else settings.projection(h)
            sequence.append(fed.unsqueeze(0))
            logits = forward()
        if settings.end_token_id is not None:
            sequence.append(embed(torch.tensor([settings.end_token_id])))
            logits = forward()
    first, tokens, step_logits = logits.clone(), [], logits
    for _ in range(new_tokens):
        token = int(step_logits.argmax())
        tokens.append(token)
        sequence.append(embed(torch.tensor([token])))
        step_logits = forward()
    return first, tokens


SETTINGS = {
    "coconut": ThoughtSettings(),
    "codi": ThoughtSettings(_projection(), START, END),
    "end-only": ThoughtSettings(_projection(2), None, END),
}


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_thought_logits_match_full_recompute(model: torch.nn.Module, name: str) -> None:
    """Rows of different prompt lengths and thought counts (0, 1, 3) in one padded batch get
    the logits a full recompute of their own sequence gives."""
    settings = SETTINGS[name]
    prompts = [[5, 6, 7, 8, 9], [10, 11], [12, 13, 14]]
    steps = [3, 0, 1]
    width = max(map(len, prompts))
    ids = torch.tensor([[PAD] * (width - len(p)) + p for p in prompts])
    mask = (torch.arange(width) >= torch.tensor([width - len(p) for p in prompts])[:, None]).long()
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    from transformers import DynamicCache

    cache = DynamicCache(config=model.config)
    with torch.no_grad():
        out = model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            past_key_values=cache,
            use_cache=True,
            output_hidden_states=True,
        )
        thoughts = run_thoughts(
            model,
            cache,
            hidden=last_hidden(out),
            logits=out.logits[:, -1].float(),
            mask=mask,
            next_position=positions[:, -1] + 1,
            steps=steps,
            projection=settings.projection,
            start_token_id=settings.start_token_id,
            end_token_id=settings.end_token_id,
        )
    for row, (prompt, k) in enumerate(zip(prompts, steps, strict=True)):
        expected, _ = _reference(model, prompt, k, 0, settings)
        torch.testing.assert_close(thoughts.logits[row], expected, atol=1e-5, rtol=1e-4)
    delimiters = (settings.start_token_id is not None) + (settings.end_token_id is not None)
    pairs = zip(prompts, steps, strict=True)
    expected_next = [len(p) + k + (delimiters if k else 0) for p, k in pairs]
    assert thoughts.next_position.tolist() == expected_next
    assert thoughts.mask.sum(-1).tolist() == expected_next


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_decode_batch_with_thoughts_matches_reference(model: torch.nn.Module, name: str) -> None:
    """Greedy decoding after k thoughts gives the tokens of the step-by-step reference, for
    each row of a batch that mixes k = 0, 2 and 4."""
    settings = SETTINGS[name]
    tokenizer = char_tokenizer()
    prompts = [(5, 6, 7, 8), (9, 10), (5, 6, 7, 8)]
    steps = [2, 0, 4]
    rows = [
        DecodeRow(p, RowSampling(0.0), max_tokens=6, thoughts=k)
        for p, k in zip(prompts, steps, strict=True)
    ]
    decoded = decode_batch(
        model,
        tokenizer,
        rows,
        eos_token_ids=frozenset({EOS}),
        pad_token_id=PAD,
        thought_settings=settings,
    )
    for row, (prompt, k) in zip(decoded, zip(prompts, steps, strict=True), strict=True):
        _, expected = _reference(model, list(prompt), k, 6, settings)
        assert row.token_ids == expected[: len(row.token_ids)]
        assert len(row.token_ids) == 6 or row.token_ids[-1] == EOS


def test_zero_thoughts_is_plain_decoding(model: torch.nn.Module) -> None:
    """thoughts = 0 everywhere decodes exactly as a batch without thought settings does."""
    tokenizer = char_tokenizer()
    rows = [DecodeRow((5, 6, 7), RowSampling(0.0), 8), DecodeRow((9,), RowSampling(0.0), 8)]
    kwargs = {"eos_token_ids": frozenset({EOS}), "pad_token_id": PAD}
    plain = decode_batch(model, tokenizer, rows, **kwargs)  # type: ignore[arg-type]
    thought = decode_batch(
        model,
        tokenizer,
        rows,
        thought_settings=SETTINGS["codi"],
        **kwargs,  # type: ignore[arg-type]
    )
    assert [r.token_ids for r in plain] == [r.token_ids for r in thought]
    assert [r.logprobs for r in plain] == [r.logprobs for r in thought]


def test_run_thoughts_refuses_bad_steps(model: torch.nn.Module) -> None:
    """A step count per row is required, and none may be negative."""
    hidden, logits = torch.zeros(2, 32), torch.zeros(2, 8)
    mask, position = torch.ones(2, 3, dtype=torch.long), torch.tensor([3, 3])
    for steps in ([1], [1, -1]):
        with pytest.raises(ValueError, match="steps must give one count"):
            run_thoughts(
                model, None, hidden=hidden, logits=logits, mask=mask, next_position=position,
                steps=steps,
            )  # fmt: skip


def test_projection_save_load(tmp_path: Path) -> None:
    """A saved projection loads with the same width and outputs."""
    projection = _projection()
    loaded = ThoughtProjection.load(projection.save(tmp_path / "projection.safetensors"))
    x = torch.randn(3, 32)
    assert loaded.hidden_size == 32
    torch.testing.assert_close(loaded(x), projection(x))
    (tmp_path / "other.safetensors").write_bytes(b"")
    with pytest.raises(Exception):  # noqa: B017, PT011 - safetensors' own error for junk
        ThoughtProjection.load(tmp_path / "other.safetensors")
