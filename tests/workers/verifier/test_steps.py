"""Step verifiers: token-score aggregation and a transformers PRM, against manual reads."""

from __future__ import annotations

import pytest
import torch
from transformers import Qwen2ForTokenClassification

from tests.workers.tiny_model import tiny_config
from tests.workers.verifier.byte_model import VOCAB, ByteTokenizer, byte_model
from tests.workers.verifier.helpers import randomize_head
from workers.base import ChatMessage
from workers.chat_prompt import encode_prompt
from workers.verifier import PRMStepVerifier, TokenStepVerifier, TokenVerifier, step_spans

TOKENIZER = ByteTokenizer()
PROMPT = (ChatMessage(role="user", content="What is 2 + 3?"),)
STEPS = ["2 + 3 = 5.", "", "The answer is 5."]


def _verifier() -> TokenVerifier:
    return randomize_head(TokenVerifier.from_generator(byte_model()), 1)


def test_step_spans_cover_each_step_and_its_separator() -> None:
    ids, spans = step_spans(TOKENIZER, PROMPT, STEPS, "\n")
    start = len(encode_prompt(TOKENIZER, PROMPT))
    assert spans[0] == (start, start + len("2 + 3 = 5.\n"))
    assert spans[1] == (spans[0][1], spans[0][1] + 1)  # an empty step keeps its newline
    assert spans[2][1] == len(ids)
    assert TOKENIZER.decode(ids[spans[2][0] : spans[2][1]]) == "The answer is 5.\n"


async def test_token_step_scores_are_means_of_token_scores() -> None:
    """Step score = mean of s(x_<t, x_t) over its tokens, from one causal forward."""
    verifier = _verifier()
    steps = TokenStepVerifier(verifier, TOKENIZER)
    got = await steps.score_steps(PROMPT, STEPS)
    ids, spans = step_spans(TOKENIZER, PROMPT, STEPS, "\n")
    for score, (a, b) in zip(got, spans, strict=True):
        # s(x_<t, x_t) scored the slow way: the prefix then the token, nothing after it.
        manual = []
        for t in range(a, b):
            with torch.no_grad():
                manual.append(float(verifier(torch.tensor([ids[: t + 1]]))[0, -1]))
        assert score == pytest.approx(sum(manual) / len(manual), abs=1e-5)
    assert await steps.score_steps(PROMPT, []) == []


async def test_prm_class_reading_takes_the_positive_class_at_each_tag() -> None:
    torch.manual_seed(0)
    config = tiny_config(VOCAB, num_hidden_layers=1, num_labels=2)
    model = Qwen2ForTokenClassification(config).eval()
    prm = PRMStepVerifier(model, TOKENIZER, step_tag=" ki")
    got = await prm.score_steps("q: 2+3?\n", ["2+3=5", "so 5"])
    ids, spans = step_spans(TOKENIZER, "q: 2+3?\n", ["2+3=5", "so 5"], " ki")
    with torch.no_grad():
        probs = torch.softmax(model(input_ids=torch.tensor([ids])).logits[0], -1)
    assert got == pytest.approx([float(probs[end - 1, -1]) for _, end in spans], abs=1e-6)
    assert all(0.0 <= p <= 1.0 for p in got)


async def test_prm_token_reading_renormalises_good_over_bad() -> None:
    model = byte_model()
    prm = PRMStepVerifier(
        model, TOKENIZER, step_tag="\n", reading="tokens", good_token="+", bad_token="-"
    )
    got = await prm.score_steps("q", ["a", "b"])
    ids, spans = step_spans(TOKENIZER, "q", ["a", "b"], "\n")
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0]
    good, bad = TOKENIZER.encode("+")[0], TOKENIZER.encode("-")[0]
    for score, (_, end) in zip(got, spans, strict=True):
        pair = torch.softmax(logits[end - 1, [good, bad]], -1)
        assert score == pytest.approx(float(pair[0]), abs=1e-6)


def test_prm_checks_its_settings() -> None:
    with pytest.raises(ValueError, match="good_token"):
        PRMStepVerifier(byte_model(), TOKENIZER, reading="tokens")
    with pytest.raises(ValueError, match="one"):
        PRMStepVerifier(byte_model(), TOKENIZER, reading="tokens", good_token="ok")
