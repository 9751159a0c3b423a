"""Guided decoding through ``decode_batch`` against a per-row uncached reference."""

from __future__ import annotations

import torch

from tests.workers.tiny_model import EOS, PAD, CharTokenizer, tiny_model
from tests.workers.verifier.helpers import naive_scores, random_verifier
from workers.decoding import DecodedRow, DecodeRow, LogitsProcessor, decode_batch
from workers.sampling import RowSampling
from workers.verifier import (
    TokenVerifier,
    VerifierLogitsProcessor,
    guided_logits,
    plausible_candidates,
)

TOKENIZER = CharTokenizer()
GREEDY = RowSampling(temperature=0.0)
PROMPTS = [tuple(TOKENIZER.encode(p)) for p in ("abc", "hello world", "x", "the cat sat")]


def _decode(
    model: torch.nn.Module, rows: list[DecodeRow], processor: LogitsProcessor | None = None
) -> list[DecodedRow]:
    return decode_batch(
        model,
        TOKENIZER,
        rows,
        eos_token_ids=frozenset({EOS}),
        pad_token_id=PAD,
        logits_processor=processor,
    )


def _reference_guided_greedy(
    model: torch.nn.Module,
    verifier: TokenVerifier,
    prompt: tuple[int, ...],
    steps: int,
    *,
    beta: float,
    alpha: float,
    top_k: int,
) -> list[int]:
    """Guided greedy decoding, one row, full forward passes and naive scores, no cache."""
    ids, out = list(prompt), []
    for _ in range(steps):
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids])).logits[:, -1].float()
        candidates = plausible_candidates(logits, alpha, top_k)
        row = candidates.row(0)
        scores = torch.zeros(candidates.ids.shape)
        if not bool(candidates.single[0]):
            scores[0, : len(row)] = torch.tensor(naive_scores(verifier, ids, row))
        guided = guided_logits(logits, candidates.ids, scores, beta, candidates.valid)
        token = int(torch.argmax(guided[0]))
        out.append(token)
        if token == EOS:
            break
        ids.append(token)
    return out


def test_beta_zero_leaves_decoding_unchanged() -> None:
    """With beta = 0, greedy and seeded sampled rows decode token for token as without."""
    model = tiny_model()
    processor = VerifierLogitsProcessor(random_verifier(), beta=0.0)
    rows = [DecodeRow(p, GREEDY, max_tokens=8) for p in PROMPTS]
    rows += [DecodeRow(p, RowSampling(1.0, top_p=0.9), 8, seed=s) for s, p in enumerate(PROMPTS)]
    plain = _decode(model, rows)
    guided = _decode(model, rows, processor)
    assert [r.token_ids for r in guided] == [r.token_ids for r in plain]
    assert [r.logprobs for r in guided] == [r.logprobs for r in plain]
    assert processor.stats.verified_rows == processor.stats.skipped_rows == 0


def test_guided_batch_equals_per_row_reference() -> None:
    """Rows finishing at different steps decode as the uncached one-row reference does."""
    model = tiny_model()
    verifier = random_verifier()
    beta, alpha, top_k = 2.0, 0.1, 6
    processor = VerifierLogitsProcessor(verifier, beta=beta, alpha=alpha, top_k=top_k)
    lengths = [4, 10, 2, 7]
    rows = [DecodeRow(p, GREEDY, max_tokens=n) for p, n in zip(PROMPTS, lengths, strict=True)]
    guided = _decode(model, rows, processor)
    for row, result in zip(rows, guided, strict=True):
        reference = _reference_guided_greedy(
            model, verifier, row.prompt_ids, row.max_tokens, beta=beta, alpha=alpha, top_k=top_k
        )
        assert result.token_ids == reference
    assert processor.stats.verified_rows > 0
    plain = _decode(model, rows)
    assert [r.token_ids for r in guided] != [r.token_ids for r in plain]  # beta mattered
    again = _decode(model, rows, processor)  # a second call starts from fresh rows
    assert [r.token_ids for r in again] == [r.token_ids for r in guided]


def test_guided_sampling_does_not_depend_on_batch_companions() -> None:
    """A seeded sampled row gives the same tokens alone and inside a batch of other rows."""
    model = tiny_model()
    verifier = random_verifier()
    row = DecodeRow(PROMPTS[1], RowSampling(1.0), max_tokens=10, seed=3)
    others = [DecodeRow(p, RowSampling(1.0), max_tokens=4, seed=9) for p in PROMPTS]
    alone = _decode(model, [row], VerifierLogitsProcessor(verifier, beta=1.0))[0]
    batch = [others[0], row, others[2], others[3]]
    together = _decode(model, batch, VerifierLogitsProcessor(verifier, beta=1.0))[1]
    assert alone.token_ids == together.token_ids


def test_skips_the_verifier_when_one_candidate_remains() -> None:
    """alpha = 1 leaves only the argmax (barring exact ties): the verifier is never run."""
    model = tiny_model()
    processor = VerifierLogitsProcessor(random_verifier(), beta=1.0, alpha=1.0)
    rows = [DecodeRow(p, GREEDY, max_tokens=5) for p in PROMPTS]
    assert [r.token_ids for r in _decode(model, rows, processor)] == [
        r.token_ids for r in _decode(model, rows)
    ]
    assert processor.stats.verified_rows == processor.stats.scored_candidates == 0
    assert processor.stats.skipped_rows > 0
