"""OpenAIWorker against ``FakeOpenAIServer``: request bodies, parsing, seed splitting,
health, and every way a response can be wrong (scoring: ``test_openai_score.py``)."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import httpx
import pytest

from tests.workers.openai.fake_server import (
    BASE,
    FakeOpenAIServer,
    Handler,
    completion_choice,
    completions_body,
)
from workers.base import ChatMessage, GenerateRequest, SamplingParams
from workers.errors import WorkerFailure
from workers.openai.worker import RequestRejected


async def test_completion_request_body_and_parsing(server: FakeOpenAIServer) -> None:
    """A string prompt goes to /v1/completions with every sampling field; the choices come
    back in index order with text, token ids, log-probs and mapped finish reasons."""
    server.routes["/v1/completions"] = lambda body: completions_body(
        completion_choice(1, " b", [-0.5], token_ids=[7], finish_reason="length"),
        completion_choice(0, " a", [-0.25, -1.0], token_ids=[5, 6]),
        prompt_tokens=10,
        completion_tokens=3,
    )
    params = SamplingParams(
        n=2, temperature=0.7, top_p=0.9, top_k=5, max_tokens=7, stop=("\n",), seed=None
    )
    async with server.worker() as worker:
        result = await worker.generate(GenerateRequest(prompt="Q:", params=params))
    assert server.bodies("/v1/completions") == [
        {
            "model": "served-name",
            "n": 2,
            "temperature": 0.7,
            "top_p": 0.9,
            "top_k": 5,
            "max_tokens": 7,
            "stop": ["\n"],
            "return_token_ids": True,
            "prompt": "Q:",
            "logprobs": 0,
        }
    ]
    first, second = result.completions
    assert (first.text, first.token_ids, first.logprobs, first.finish_reason) == (
        " a",
        (5, 6),
        (-0.25, -1.0),
        "stop",
    )
    assert (second.text, second.token_ids, second.finish_reason) == (" b", (7,), "length")
    assert result.model == "m"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (20, 3)


async def test_chat_prompt_uses_chat_completions(server: FakeOpenAIServer) -> None:
    """Chat messages go to /v1/chat/completions with logprobs on; optional fields stay out
    when unset, and log-probs are read from logprobs.content."""
    server.routes["/v1/chat/completions"] = lambda body: {
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "4"},
                "logprobs": {"content": [{"token": "4", "logprob": -0.1, "top_logprobs": []}]},
                "finish_reason": "stop",
                "token_ids": [19],
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 1},
    }
    prompt = (ChatMessage(role="user", content="2+2?"),)
    async with server.worker() as worker:
        result = await worker.generate(GenerateRequest(prompt=prompt))
    (body,) = server.bodies("/v1/chat/completions")
    assert body["messages"] == [{"role": "user", "content": "2+2?"}]
    assert body["logprobs"] is True
    assert not {"top_k", "stop", "seed", "prompt"} & set(body)
    (completion,) = result.completions
    assert (completion.text, completion.token_ids, completion.logprobs) == ("4", (19,), (-0.1,))


async def test_seeded_samples_are_split_into_concurrent_requests(
    server: FakeOpenAIServer,
) -> None:
    """With a seed and n > 1, sample i is its own n=1 request with seed + i, all in flight
    at once, and the completions come back in sample order."""
    arrived: list[int] = []
    all_in = asyncio.Event()

    async def handler(body: Any) -> Any:
        arrived.append(body["seed"])
        if len(arrived) == 3:
            all_in.set()
        await asyncio.wait_for(all_in.wait(), 1.0)  # only returns if all three are in flight
        return completions_body(
            completion_choice(0, f"seed {body['seed']}", [-1.0]), prompt_tokens=4
        )

    server.routes["/v1/completions"] = handler
    params = SamplingParams(n=3, temperature=1.0, seed=10)
    async with server.worker() as worker:
        result = await worker.generate(GenerateRequest(prompt="Q:", params=params))
    assert sorted(arrived) == [10, 11, 12]
    assert all(body["n"] == 1 for body in server.bodies("/v1/completions"))
    assert [c.text for c in result.completions] == ["seed 10", "seed 11", "seed 12"]
    assert result.usage.prompt_tokens == 12


async def test_greedy_or_unseeded_samples_are_one_request(server: FakeOpenAIServer) -> None:
    """Greedy sampling (seed irrelevant) and unseeded sampling send one request with n."""
    server.routes["/v1/completions"] = lambda body: completions_body(
        *(completion_choice(i, "t", [-1.0]) for i in range(body["n"]))
    )
    async with server.worker() as worker:
        await worker.generate(GenerateRequest(prompt="Q", params=SamplingParams(n=3, seed=4)))
        await worker.generate(
            GenerateRequest(prompt="Q", params=SamplingParams(n=2, temperature=1.0))
        )
    assert [(b["n"], b.get("seed")) for b in server.bodies("/v1/completions")] == [
        (3, 4),
        (2, None),
    ]


async def test_assistant_prefix_is_continued(server: FakeOpenAIServer) -> None:
    """assistant_prefix follows a string prompt; for chat it is a final assistant message
    that the server continues instead of opening a new turn."""
    server.routes["/v1/completions"] = lambda body: completions_body(
        completion_choice(0, " 4", [-0.1])
    )
    server.routes["/v1/chat/completions"] = lambda body: {
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": " 4"},
                "logprobs": {"content": [{"token": " 4", "logprob": -0.1}]},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 1},
    }
    chat = (ChatMessage(role="user", content="2+2?"),)
    async with server.worker() as worker:
        await worker.generate(GenerateRequest(prompt="Q: 2+2?\nA:", assistant_prefix=" Step 1:"))
        await worker.generate(GenerateRequest(prompt=chat, assistant_prefix="Step 1:"))
        await worker.generate(GenerateRequest(prompt=chat))
    assert server.bodies("/v1/completions")[0]["prompt"] == "Q: 2+2?\nA: Step 1:"
    prefixed, plain = server.bodies("/v1/chat/completions")
    assert prefixed["messages"][-1] == {"role": "assistant", "content": "Step 1:"}
    assert (prefixed["continue_final_message"], prefixed["add_generation_prompt"]) == (True, False)
    assert not {"continue_final_message", "add_generation_prompt"} & set(plain)


async def test_missing_token_ids_leave_ids_empty(server: FakeOpenAIServer) -> None:
    """A server that returns no token ids still gives text and log-probs; ids stay empty,
    and token_ids=False does not ask for them."""
    server.routes["/v1/completions"] = lambda body: completions_body(
        completion_choice(0, "hi", [-0.5, -0.5])
    )
    async with server.worker(token_ids=False) as worker:
        result = await worker.generate(GenerateRequest(prompt="Q"))
    assert "return_token_ids" not in server.bodies("/v1/completions")[0]
    assert result.completions[0].token_ids == ()
    assert result.completions[0].logprobs == (-0.5, -0.5)


async def test_health_checks_server_and_model(server: FakeOpenAIServer) -> None:
    """health passes when /health is 200 and /v1/models lists the served model; a 404 on
    /health falls through to /v1/models; a 503 or an unlisted model fails, named."""
    models = {"object": "list", "data": [{"id": "served-name"}, {"id": "other"}]}
    server.routes["/v1/models"] = lambda body: models
    async with server.worker() as worker:
        await worker.health()  # no /health route: 404, then /v1/models
        server.routes["/health"] = lambda body: httpx.Response(200)
        await worker.health()
        server.routes["/health"] = lambda body: httpx.Response(503, text="engine dead")
        with pytest.raises(WorkerFailure, match=r"HTTP 503 from GET http://fake:8000/health"):
            await worker.health()
        server.routes["/health"] = lambda body: httpx.Response(200)
        models["data"] = [{"id": "other"}]
        with pytest.raises(WorkerFailure, match=r"lists \['other'\], not the model"):
            await worker.health()


async def test_step_scores_posts_tagged_steps_to_pooling(server: FakeOpenAIServer) -> None:
    """step_scores sends the steps joined by the step tag to /pooling and reads P(correct)
    (the last class probability) per step; a row count mismatch is a named failure."""
    server.routes["/pooling"] = lambda body: {
        "data": [{"index": 0, "object": "pooling", "data": [[0.1, 0.9], [0.7, 0.3]]}]
    }
    async with server.worker() as worker:
        assert await worker.step_scores("Q: ", ["a", "b"]) == (0.9, 0.3)
        chat = (ChatMessage(role="user", content="Q"),)
        assert await worker.step_scores(chat, ["a", "b"], extra={"task": "token_classify"})
        with pytest.raises(WorkerFailure, match=r"2 step rows for 3 steps"):
            await worker.step_scores("Q: ", ["a", "b", "c"])
    text_body, chat_body, _ = server.bodies("/pooling")
    assert text_body == {"model": "served-name", "input": "Q: a<extra_0>b<extra_0>"}
    assert chat_body["messages"][-1] == {"role": "assistant", "content": "a<extra_0>b<extra_0>"}
    assert chat_body["task"] == "token_classify"
    assert chat_body["add_generation_prompt"] is False


async def test_api_key_base_url_and_timeouts(server: FakeOpenAIServer) -> None:
    """The API key is sent as a bearer token; a trailing /v1 on base_url is dropped; calls
    carry the configured timeouts (health checks their own)."""
    server.routes["/v1/completions"] = lambda body: completions_body(
        completion_choice(0, "x", [-1.0])
    )
    server.routes["/v1/models"] = lambda body: {"data": [{"id": "served-name"}]}
    worker = server.worker(api_key="sk-test", timeout_s=7, connect_timeout_s=2, health_timeout_s=1)
    async with worker:
        assert worker.base_url == BASE
        await worker.generate(GenerateRequest(prompt="Q"))
        await worker.health()
    assert server.requests[0][3]["authorization"] == "Bearer sk-test"
    assert server.timeouts[0] == {"connect": 2, "read": 7, "write": 7, "pool": 7}
    assert server.timeouts[-1] == {"connect": 1, "read": 1, "write": 1, "pool": 1}


def _raise(exc: Exception) -> Handler:
    def handler(body: Any) -> Any:
        raise exc

    return handler


def _good() -> Any:
    return completions_body(completion_choice(0, "x", [-1.0]))


def _without(path: list[str | int]) -> Any:
    body = _good()
    target = body
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return body


REQUEST = httpx.Request("POST", BASE + "/v1/completions")
BROKEN: dict[str, tuple[Handler, str]] = {
    "http 500": (lambda b: httpx.Response(500, text="oops"), r"HTTP 500 from POST .* 'oops'"),
    "http 503": (lambda b: httpx.Response(503), r"HTTP 503 from POST"),
    "not json": (lambda b: httpx.Response(200, text="<html>"), r"malformed JSON .*'<html>'"),
    "truncated json": (
        lambda b: httpx.Response(200, text=json.dumps(_good())[:40]),
        r"malformed JSON \(HTTP 200, 40 bytes, truncated\?\)",
    ),
    "connection cut": (
        _raise(httpx.RemoteProtocolError("peer closed connection", request=REQUEST)),
        r"connection broke mid-response \(truncated\?\)",
    ),
    "read timeout": (
        _raise(httpx.ReadTimeout("timed out", request=REQUEST)),
        r"timed out \(ReadTimeout; limit 120s",
    ),
    "connect error": (
        _raise(httpx.ConnectError("refused", request=REQUEST)),
        r"cannot connect for POST",
    ),
    "no choices": (lambda b: _without(["choices"]), r"missing field choices in the response"),
    "no usage": (lambda b: _without(["usage"]), r"missing field usage in"),
    "no logprobs": (lambda b: _without(["choices", 0, "logprobs"]), r"choices\[0\]\.logprobs"),
    "no text": (lambda b: _without(["choices", 0, "text"]), r"missing field choices\[0\]\.text"),
    "bad logprob": (
        lambda b: completions_body(completion_choice(0, "x", ["-1"])),
        r"token_logprobs\[0\] is not a number",
    ),
    "aborted": (
        lambda b: completions_body(completion_choice(0, "x", [-1.0], finish_reason="abort")),
        r"finish_reason is 'abort', not stop or length",
    ),
    "too few choices": (
        lambda b: completions_body(completion_choice(0, "x", [-1.0])),
        r"1 choices where 2 were asked for",
    ),
    "body not an object": (lambda b: [1, 2], r"the body is not an object"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
async def test_broken_responses_raise_a_named_worker_failure(
    server: FakeOpenAIServer, case: str
) -> None:
    """Every transport error, HTTP 5xx, malformed or truncated body and missing field is a
    WorkerFailure for this model naming the URL and what was wrong."""
    handler, pattern = BROKEN[case]
    server.routes["/v1/completions"] = handler
    n = 2 if case == "too few choices" else 1
    async with server.worker() as worker:
        with pytest.raises(WorkerFailure) as info:
            await worker.generate(GenerateRequest(prompt="Q", params=SamplingParams(n=n)))
    assert info.value.model == "m"
    assert f"{BASE}/v1/completions" in info.value.reason
    assert getattr(info.value, "retryable", True)
    assert re.search(pattern, info.value.reason), info.value.reason


async def test_http_4xx_is_a_non_retryable_rejection(server: FakeOpenAIServer) -> None:
    """A 400 is the request's fault: RequestRejected, retryable False, status kept; 429
    (overloaded) stays a plain, retryable WorkerFailure."""
    server.routes["/v1/completions"] = lambda b: httpx.Response(400, json={"message": "too long"})
    async with server.worker() as worker:
        with pytest.raises(RequestRejected, match="HTTP 400") as info:
            await worker.generate(GenerateRequest(prompt="Q"))
        assert (info.value.status, info.value.retryable) == (400, False)
        server.routes["/v1/completions"] = lambda b: httpx.Response(429)
        with pytest.raises(WorkerFailure) as busy:
            await worker.generate(GenerateRequest(prompt="Q"))
        assert not isinstance(busy.value, RequestRejected)


def test_worker_survives_successive_event_loops(server: FakeOpenAIServer) -> None:
    """One asyncio.run per query: each loop gets its own HTTP client."""
    server.routes["/v1/completions"] = lambda body: completions_body(
        completion_choice(0, "x", [-1.0])
    )
    worker = server.worker()
    for _ in range(2):
        result = asyncio.run(worker.generate(GenerateRequest(prompt="Q")))
        assert result.completions[0].text == "x"
    asyncio.run(worker.close())
