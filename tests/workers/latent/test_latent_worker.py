"""A latent model behind the transformers worker: latent ids never reach the text (answers,
streams, decode_tokens), usage counts them apart, and continuous thoughts run per request."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch

from tests.workers.latent.test_continuous import _reference
from tests.workers.latent.tiny_latent import EOS, latent_checkpoint
from workers import GenerateRequest, TransformersWorker
from workers.base import GenerateResult, SamplingParams, TokenChunk
from workers.latent import LatentVocabulary, ThoughtSettings


class ScriptedTokens:
    """A logits processor (scripted, for tests) forcing the generated tokens to follow
    ``script`` after a prompt of ``prompt_length`` tokens."""

    def __init__(self, prompt_length: int, script: Sequence[int]) -> None:
        self.prompt_length, self.script = prompt_length, list(script)

    def __call__(self, sequences: Sequence[Sequence[int]], logits: torch.Tensor) -> torch.Tensor:
        forced = torch.full_like(logits, float("-inf"))
        for row, sequence in enumerate(sequences):
            forced[row, self.script[len(sequence) - self.prompt_length]] = 0.0
        return forced


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, LatentVocabulary]:
    return latent_checkpoint(tmp_path_factory.mktemp("latent") / "model", codes=8)


async def test_latent_ids_are_skipped_in_text_and_counted_apart(
    checkpoint: tuple[Path, LatentVocabulary],
) -> None:
    """A completion start, 2 codes, end, "xy", EOS reads "xy" (whole and streamed); its
    usage has 7 completion tokens of which 4 latent."""
    path, vocabulary = checkpoint
    script = [vocabulary.start_id, vocabulary.code_id(2), vocabulary.code_id(5)]
    script += [vocabulary.end_id, 25, 26, EOS]  # "x", "y"
    worker = TransformersWorker.load(path, logits_processor=ScriptedTokens(3, script))
    try:
        request = GenerateRequest(prompt="abc", params=SamplingParams(max_tokens=10, n=2))
        result = await worker.generate(request)
        for completion in result.completions:
            assert completion.text == "xy"
            assert completion.token_ids == tuple(script)
        assert result.usage.completion_tokens == 14
        assert result.usage.latent_tokens == 8
        texts = {0: "", 1: ""}
        final = None
        async for item in worker.generate_stream(request):
            if isinstance(item, TokenChunk):
                texts[item.index] += item.text
            else:
                final = item
        assert texts == {0: "xy", 1: "xy"}
        assert isinstance(final, GenerateResult)
        assert final.usage.latent_tokens == 8
        assert await worker.decode_tokens(script) == "xy"
    finally:
        await worker.close()


async def test_continuous_thoughts_run_between_the_delimiters(
    checkpoint: tuple[Path, LatentVocabulary],
) -> None:
    """k = 2 on a latent model: start, 2 thoughts, end, then text, as the step-by-step
    reference computes it; usage charges the 4 thought steps as latent; a k = 0 request in
    the same batch decodes as it does alone."""
    path, vocabulary = checkpoint
    worker = TransformersWorker.load(path)
    try:
        plain = GenerateRequest(prompt="abc", params=SamplingParams(max_tokens=6))
        thinking = GenerateRequest(
            prompt="abc", params=SamplingParams(max_tokens=6, continuous_thoughts=2)
        )
        alone = await worker.generate(plain)
        mixed, thought = await asyncio.gather(worker.generate(plain), worker.generate(thinking))
        assert mixed.completions[0].token_ids == alone.completions[0].token_ids
        assert alone.usage.latent_tokens == 0
        settings = ThoughtSettings(None, vocabulary.start_id, vocabulary.end_id)
        prompt = worker.tokenizer.encode("abc")
        _, expected = _reference(worker.model, prompt, 2, 6, settings)
        ids = thought.completions[0].token_ids
        assert list(ids) == expected[: len(ids)]
        assert thought.usage.prompt_tokens == 3
        assert thought.usage.completion_tokens == len(ids) + 4
        assert thought.usage.latent_tokens == 4 + vocabulary.count_latent(ids)
    finally:
        await worker.close()


async def test_plain_model_thoughts_count_without_delimiters(tmp_path: Path) -> None:
    """On a model without latent vocabulary, k thoughts are k latent steps per sample."""
    from tests.workers.latent.tiny_latent import char_tokenizer, tiny_llama

    tokenizer = char_tokenizer()
    worker = TransformersWorker(tiny_llama(len(tokenizer)), tokenizer, model_name="tiny")
    try:
        params = SamplingParams(max_tokens=4, n=2, continuous_thoughts=3)
        result = await worker.generate(GenerateRequest(prompt="ab", params=params))
        generated = sum(len(c.token_ids) for c in result.completions)
        assert result.usage.latent_tokens == 6
        assert result.usage.completion_tokens == generated + 6
    finally:
        await worker.close()
