"""The batched decode loop against unbatched reference computations on a tiny model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from tests.workers.tiny_model import ALPHABET, EOS, OFFSET, PAD, CharTokenizer, tiny_model
from workers.decoding import DecodeRow, LogitsProcessor, decode_batch, find_stop
from workers.sampling import RowSampling, filter_logits

TOKENIZER = CharTokenizer()
GREEDY = RowSampling(temperature=0.0)


def _decode(model: torch.nn.Module, rows: list[DecodeRow]) -> list:  # type: ignore[type-arg]
    return decode_batch(model, TOKENIZER, rows, eos_token_ids=frozenset({EOS}), pad_token_id=PAD)


def _reference_greedy(model: torch.nn.Module, prompt: tuple[int, ...], steps: int) -> list[int]:
    """Greedy decoding by full forward passes over the growing sequence, no cache."""
    ids = list(prompt)
    out = []
    for _ in range(steps):
        logits = model(input_ids=torch.tensor([ids])).logits[0, -1]
        token = int(torch.argmax(logits))
        out.append(token)
        if token == EOS:
            break
        ids.append(token)
    return out


def test_batched_greedy_equals_unbatched_reference() -> None:
    """Rows of different prompt lengths decoded together match one-at-a-time decoding."""
    model = tiny_model()
    prompts = [tuple(TOKENIZER.encode(p)) for p in ("abc", "hello world", "x", "hello world")]
    rows = [DecodeRow(p, GREEDY, max_tokens=12) for p in prompts]
    decoded = _decode(model, rows)
    for prompt, result in zip(prompts, decoded, strict=True):
        assert result.token_ids == _reference_greedy(model, prompt, 12)


def test_logprobs_are_raw_model_logprobs() -> None:
    """Each reported log-prob equals log_softmax of an uncached forward at that position."""
    model = tiny_model()
    prompt = tuple(TOKENIZER.encode("the cat"))
    row = DecodeRow(prompt, RowSampling(temperature=1.3, top_k=5), max_tokens=6, seed=7)
    (result,) = _decode(model, [row])
    ids = list(prompt) + result.token_ids
    with torch.no_grad():
        logprobs = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0], dim=-1)
    for step, token in enumerate(result.token_ids):
        expected = float(logprobs[len(prompt) - 1 + step, token])
        assert abs(result.logprobs[step] - expected) < 1e-4


def test_seeded_row_does_not_depend_on_batch_companions() -> None:
    """A seeded sampled row gives the same tokens alone and inside a larger batch."""
    model = tiny_model()
    row = DecodeRow(tuple(TOKENIZER.encode("seed me")), RowSampling(1.0), max_tokens=10, seed=3)
    other = DecodeRow(tuple(TOKENIZER.encode("another prompt")), RowSampling(1.0), 10, seed=9)
    alone = _decode(model, [row])[0].token_ids
    together = _decode(model, [other, row, other])[1].token_ids
    assert alone == together


def test_different_seeds_give_different_samples() -> None:
    """Sampling at high temperature with different seeds explores different paths."""
    model = tiny_model()
    prompt = tuple(TOKENIZER.encode("go"))
    rows = [DecodeRow(prompt, RowSampling(2.0), max_tokens=8, seed=s) for s in range(6)]
    assert len({tuple(r.token_ids) for r in _decode(model, rows)}) > 1


def test_max_tokens_and_finish_reason() -> None:
    """A row stops at max_tokens with finish_reason 'length' unless EOS or a stop came first."""
    model = tiny_model()
    rows = [DecodeRow(tuple(TOKENIZER.encode("abc")), GREEDY, max_tokens=n) for n in (1, 3)]
    for row, result in zip(rows, _decode(model, rows), strict=True):
        if result.finish_reason == "length":
            assert len(result.token_ids) == row.max_tokens
        else:
            assert result.token_ids[-1] == EOS


def test_stop_string_truncates_text() -> None:
    """Text is cut before the stop string and decoding stops once it appears."""
    model = tiny_model()
    prompt = tuple(TOKENIZER.encode("abc"))
    (free,) = _decode(model, [DecodeRow(prompt, GREEDY, max_tokens=20)])
    text = TOKENIZER.decode(free.token_ids)
    if len(text) < 4:
        return  # the random model ended at once; nothing to cut
    stop = text[2:4]
    (cut,) = _decode(model, [DecodeRow(prompt, GREEDY, max_tokens=20, stop=(stop,))])
    assert cut.finish_reason == "stop"
    assert cut.text == text[: text.find(stop)]
    # One token per character: the tokens kept are exactly those of the returned text.
    assert cut.token_ids == free.token_ids[: len(cut.text)]
    assert cut.logprobs == free.logprobs[: len(cut.text)]


class PieceTokenizer(CharTokenizer):
    """``CharTokenizer`` whose first ids decode to the multi-character ``PIECES``."""

    PIECES = ("ab", "c.d", ".", "e")

    def decode(self, ids: Any, skip_special_tokens: bool = True) -> str:
        return "".join(
            self.PIECES[i - OFFSET] if i - OFFSET < len(self.PIECES) else ALPHABET[i - OFFSET]
            for i in ids
            if i >= OFFSET
        )


def forced(prompt_len: int, pieces: Sequence[str]) -> LogitsProcessor:
    """A logits processor that makes every row sample ``pieces`` (PieceTokenizer ids)."""
    ids = [PieceTokenizer.PIECES.index(p) + OFFSET for p in pieces]

    def process(sequences: Sequence[Sequence[int]], logits: torch.Tensor) -> torch.Tensor:
        out = torch.full_like(logits, float("-inf"))
        for row, sequence in enumerate(sequences):
            out[row, ids[min(len(sequence) - prompt_len, len(ids) - 1)]] = 0.0
        return out

    return process


def test_stop_keeps_only_the_tokens_of_the_returned_text() -> None:
    """Tokens wholly at or after the stop string's start are dropped with their log-probs;
    the token the returned text ends inside (the stop starts mid-token) is kept."""
    model, prompt = tiny_model(), tuple(CharTokenizer().encode("go"))
    row = DecodeRow(prompt, GREEDY, max_tokens=10, stop=(".",))
    for pieces, text, kept in (
        (["ab", "e", ".", "e"], "abe", 2),  # "." is a token of its own: dropped
        (["ab", "c.d", "e"], "abc", 2),  # the text ends inside "c.d": kept
        ([".", "e"], "", 0),
    ):
        (result,) = decode_batch(
            model,
            PieceTokenizer(),
            [row],
            eos_token_ids=frozenset({EOS}),
            pad_token_id=PAD,
            logits_processor=forced(len(prompt), pieces),
        )
        assert (result.text, result.finish_reason) == (text, "stop")
        assert result.token_ids == [PieceTokenizer.PIECES.index(p) + OFFSET for p in pieces[:kept]]
        assert len(result.logprobs) == kept


def test_find_stop_picks_earliest() -> None:
    """The earliest of several stop strings wins."""
    assert find_stop("abc\n\nStep 2", ["Step", "\n\n"]) == 3
    assert find_stop("abc", ["x"]) is None
    assert find_stop("abc", [""]) is None


def test_filter_logits_top_k_and_top_p() -> None:
    """Top-k keeps k tokens; top-p keeps the smallest prefix reaching the mass."""
    logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
    assert torch.isfinite(filter_logits(logits, top_k=2, top_p=1.0)).tolist() == [
        True,
        True,
        False,
        False,
    ]
    kept = torch.isfinite(filter_logits(logits, top_k=0, top_p=0.75)).tolist()
    assert kept == [True, True, False, False]
    assert torch.isfinite(filter_logits(logits, top_k=0, top_p=0.01)).tolist()[0]
