"""The transformers worker on a real model (SmolLM2-135M-Instruct from the catalog)."""

from __future__ import annotations

import asyncio

import pytest

from workers.base import ChatMessage, GenerateRequest, SamplingParams, ScoreRequest
from workers.transformers_worker import TransformersWorker

pytestmark = pytest.mark.slow

CAPITAL = (ChatMessage(role="user", content="What is the capital of France? Answer briefly."),)


@pytest.fixture(scope="module")
def worker(small_model_name: str) -> TransformersWorker:
    return TransformersWorker.load(small_model_name, threads=2)


async def test_greedy_answers_and_is_deterministic(worker: TransformersWorker) -> None:
    """Greedy decoding names Paris and gives the same tokens on every call."""
    params = SamplingParams(max_tokens=24)
    first, second = await asyncio.gather(
        worker.generate(GenerateRequest(prompt=CAPITAL, params=params)),
        worker.generate(GenerateRequest(prompt=CAPITAL, params=params)),
    )
    assert "Paris" in first.completions[0].text
    assert first.completions[0].token_ids == second.completions[0].token_ids


async def test_generated_logprobs_agree_with_score(worker: TransformersWorker) -> None:
    """The log-probs reported while generating equal those score() computes afterwards."""
    params = SamplingParams(max_tokens=16, temperature=0.9, seed=11)
    (completion,) = (
        await worker.generate(GenerateRequest(prompt=CAPITAL, params=params))
    ).completions
    body = completion.text
    scored = await worker.score(ScoreRequest(prompt=CAPITAL, continuations=(body,)))
    (score,) = scored.scores
    n = len(score.token_ids)
    if score.token_ids != completion.token_ids[:n]:
        pytest.skip("re-tokenizing the text gave different tokens; nothing to compare")
    assert score.token_logprobs == pytest.approx(completion.logprobs[:n], abs=1e-3)


async def test_score_prefers_the_likely_continuation(worker: TransformersWorker) -> None:
    """log P(' Paris.') beats log P(' a banana.') after 'The capital of France is'."""
    result = await worker.score(
        ScoreRequest(prompt="The capital of France is", continuations=(" Paris.", " a banana."))
    )
    paris, banana = (s.total_logprob for s in result.scores)
    assert paris > banana


async def test_seeded_samples_vary_and_repeat(worker: TransformersWorker) -> None:
    """n seeded samples differ from each other and repeat exactly with the same seed."""
    params = SamplingParams(n=4, temperature=1.0, max_tokens=12, seed=5)
    a = await worker.generate(GenerateRequest(prompt=CAPITAL, params=params))
    b = await worker.generate(GenerateRequest(prompt=CAPITAL, params=params))
    texts = [c.text for c in a.completions]
    assert len(set(texts)) > 1
    assert texts == [c.text for c in b.completions]
