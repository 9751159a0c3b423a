"""The verifier on a real model (SmolLM2-135M-Instruct): save, attach by path, guide."""

from __future__ import annotations

from pathlib import Path

import pytest

from workers.base import ChatMessage, GenerateRequest, Guidance, SamplingParams, ScoreRequest
from workers.transformers_worker import TransformersWorker
from workers.verifier import TokenVerifier

pytestmark = pytest.mark.slow

PROMPT = (ChatMessage(role="user", content="What is 12 + 30? Answer briefly."),)


async def test_saved_verifier_attaches_and_a_neutral_one_keeps_greedy(
    small_model_name: str, tmp_path: Path
) -> None:
    """A fresh verifier (zero head, so s = 0) saved and attached by path: guided greedy
    keeps the argmax, so it equals plain greedy; top alternatives come back per token."""
    plain = TransformersWorker.load(small_model_name, threads=2)
    TokenVerifier.from_generator(plain.model, trainable="head").save(tmp_path / "v")
    worker = TransformersWorker.load(small_model_name, threads=2, verifier=tmp_path / "v")
    try:
        params = SamplingParams(max_tokens=12)
        guided = params.model_copy(update={"guidance": Guidance(beta=1.0)})
        want = await plain.generate(GenerateRequest(prompt=PROMPT, params=params))
        got = await worker.generate(GenerateRequest(prompt=PROMPT, params=guided))
        assert got.completions[0].token_ids == want.completions[0].token_ids
        stats = worker.guidance_stats
        assert stats is not None
        assert stats.verified_rows + stats.skipped_rows > 0
        text = want.completions[0].text
        scored = await worker.score(
            ScoreRequest(prompt=PROMPT, continuations=(text,), top_logprobs=3)
        )
        (score,) = scored.scores
        assert len(score.top_alternatives) == len(score.token_ids) > 0
        assert all(len(top) == 3 for top in score.top_alternatives)
        assert await worker.decode_tokens(score.token_ids) == text
    finally:
        await plain.close()
        await worker.close()
