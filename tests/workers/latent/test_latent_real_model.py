"""A real small model (SmolLM2-135M) extended with a latent vocabulary loads in the
transformers worker as an ordinary checkpoint and, untrained, answers as before."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from workers import GenerateRequest, TransformersWorker
from workers.base import SamplingParams
from workers.latent import extend_vocabulary, save_latent_model

pytestmark = pytest.mark.slow


async def test_extended_smollm2_serves_like_the_base(small_model_name: str, tmp_path: Path) -> None:
    """Greedy text from the extended checkpoint equals the base model's (the new rows are
    mean embeddings, so they win no argmax); 1024 codes + 2 delimiters are added."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from workers.catalog import resolve

    source = resolve(small_model_name)
    model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(source)
    vocabulary = extend_vocabulary(model, tokenizer, 1024)
    assert vocabulary.end_id + 1 == len(tokenizer)
    path = save_latent_model(model, tokenizer, vocabulary, tmp_path / "latent-smollm2")
    del model
    request = GenerateRequest(
        prompt="The capital of France is", params=SamplingParams(max_tokens=12)
    )
    async with TransformersWorker.load(small_model_name) as base:
        expected = (await base.generate(request)).completions[0]
    async with TransformersWorker.load(path) as latent:
        assert latent.latent.vocabulary == vocabulary
        got = await latent.generate(request)
    assert got.completions[0].text == expected.text
    assert got.completions[0].token_ids == expected.token_ids
    assert got.usage.latent_tokens == 0
