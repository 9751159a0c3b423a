"""The Model Runner V2 verifier adapter in a real vLLM engine: needs a CUDA device (and
the CUDA ``vllm`` build). CPU engines use the V1 runner (``test_vllm_worker.py``); the V2
adapter's logic is unit-tested on tensors in ``test_vllm_processors.py``."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from workers import ChatMessage, GenerateRequest, Guidance, SamplingParams, TransformersWorker

pytestmark = [pytest.mark.gpu, pytest.mark.slow]
pytest.importorskip("vllm")

from workers.vllm.processors import V2_PROCESSOR  # noqa: E402
from workers.vllm.worker import VLLMWorker  # noqa: E402

PROMPTS = ((ChatMessage(role="user", content="What is the capital of France?"),), "Once upon a")


@pytest.fixture(scope="module")
def engine(small_model_name: str, verifier_dir: Path) -> Iterator[VLLMWorker]:
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VLLM_USE_V2_MODEL_RUNNER", "1")
        worker = VLLMWorker.load(
            small_model_name, max_model_len=1024, verifier=verifier_dir, enforce_eager=True
        )
    try:
        yield worker
    finally:
        asyncio.run(worker.close())


async def test_v2_adapter_guides_like_the_transformers_loop(
    engine: VLLMWorker, small_model_name: str, verifier_dir: Path
) -> None:
    """On Model Runner V2: beta = 0 changes nothing; beta > 0 decodes greedily what the
    transformers loop decodes with the same verifier."""
    assert engine.guidance_processor == V2_PROCESSOR
    reference = TransformersWorker.load(small_model_name, verifier=verifier_dir)
    guided = Guidance(beta=2.0, alpha=0.05, top_k=8)
    for prompt in PROMPTS:
        plain, zero, steered = [
            (await engine.generate(GenerateRequest(prompt=prompt, params=p))).completions[0]
            for p in (
                SamplingParams(max_tokens=16),
                SamplingParams(max_tokens=16, guidance=Guidance(beta=0.0)),
                SamplingParams(max_tokens=16, guidance=guided),
            )
        ]
        expected = await reference.generate(
            GenerateRequest(prompt=prompt, params=SamplingParams(max_tokens=16, guidance=guided))
        )
        assert zero.token_ids == plain.token_ids
        assert steered.token_ids == expected.completions[0].token_ids
    await reference.close()
