"""Continuous thoughts outside the transformers worker: ``ThoughtBudget`` adds k to every
request, vLLM and HTTP workers refuse them by name, and vLLM's usage counts latent ids."""

from __future__ import annotations

import pytest

from workers.base import Completion, GenerateRequest, SamplingParams
from workers.errors import UnsupportedRequest
from workers.latent import LatentModel, LatentVocabulary, ThoughtBudget
from workers.openai.worker import OpenAIWorker
from workers.scripted import ScriptedWorker, cycle_texts
from workers.vllm.requests import generate_params, generate_result


async def test_thought_budget_sets_k_on_requests_without_their_own() -> None:
    """A plain request gets k = 3; one asking for 5 keeps 5; scoring passes through."""
    inner = ScriptedWorker("scripted", cycle_texts(["The answer is 4."]))
    worker = ThoughtBudget(inner, 3)
    await worker.generate(GenerateRequest(prompt="2+2?"))
    asked = SamplingParams(continuous_thoughts=5)
    async for _ in worker.generate_stream(GenerateRequest(prompt="2+2?", params=asked)):
        pass
    thoughts = [
        r.params.continuous_thoughts for r in inner.requests if isinstance(r, GenerateRequest)
    ]
    assert thoughts == [3, 5]
    assert worker.model_name == "scripted"
    with pytest.raises(ValueError, match="thoughts must be >= 0"):
        ThoughtBudget(inner, -1)


async def test_backends_without_thoughts_refuse_them() -> None:
    """vLLM's request builder and the HTTP worker refuse k > 0 before any engine call."""
    request = GenerateRequest(prompt="x", params=SamplingParams(continuous_thoughts=2))
    with pytest.raises(UnsupportedRequest, match="vLLM cannot run continuous thoughts"):
        generate_params("m", request, guided=False, streamed=False)
    http = OpenAIWorker("http://127.0.0.1:9/v1", model="m")
    try:
        with pytest.raises(UnsupportedRequest, match="continuous thoughts"):
            await http.generate(request)
    finally:
        await http.close()


def test_vllm_usage_counts_latent_ids_apart() -> None:
    """A completion of 2 text tokens and 3 latent ids: 5 completion tokens, 3 latent."""
    vocabulary = LatentVocabulary(first_id=100, count=4, start_id=104, end_id=105)
    completion = Completion(
        text="ab", token_ids=(104, 101, 105, 7, 8), logprobs=(0.0,) * 5, finish_reason="stop"
    )
    result = generate_result("m", (1, 2), (completion,), 0.0, LatentModel(vocabulary))
    assert result.usage.completion_tokens == 5
    assert result.usage.latent_tokens == 3
    assert generate_result("m", (1, 2), (completion,), 0.0).usage.latent_tokens == 0
