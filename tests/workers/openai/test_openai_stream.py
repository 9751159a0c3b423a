"""``OpenAIWorker.generate_stream`` against ``FakeOpenAIServer`` answering with server-sent
events: chunks as the events come, the same result as the unstreamed call, seed splitting,
errors, and closing the stream closing the HTTP response."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.workers.openai.fake_server import FakeOpenAIServer, completion_choice, completions_body
from workers.base import (
    ChatMessage,
    GenerateRequest,
    GenerateResult,
    SamplingParams,
    StreamItem,
    TokenChunk,
)
from workers.errors import WorkerFailure
from workers.openai.worker import RequestRejected
from workers.streaming import closing


class Events(httpx.AsyncByteStream):
    """An SSE body sent event by event (``delay_s`` apart); records being closed."""

    def __init__(self, events: list[Any], *, done: bool = True, delay_s: float = 0.0) -> None:
        self.events, self.done, self.delay_s = events, done, delay_s
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for event in self.events:
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            yield f"data: {json.dumps(event)}\n\n".encode()
        if self.done:
            yield b"data: [DONE]\n\n"

    async def aclose(self) -> None:
        self.closed = True


def sse(events: Events) -> httpx.Response:
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=events)


def text_event(index: int, text: str, pieces: list[str], ids: list[int], **extra: Any) -> Any:
    choice = {
        "index": index,
        "text": text,
        "logprobs": {"tokens": pieces, "token_logprobs": [-0.5] * len(pieces)},
        "token_ids": ids,
        "finish_reason": None,
    }
    return {"choices": [choice | extra]}


USAGE = {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 4}}


async def _items(server: FakeOpenAIServer, request: GenerateRequest) -> list[StreamItem]:
    async with server.worker() as worker:
        return [item async for item in worker.generate_stream(request)]


async def test_a_completion_streams_its_deltas_and_ends_with_the_whole_result(
    server: FakeOpenAIServer,
) -> None:
    """Each event's text is a chunk at once (with its ids and log-probs); the result is the
    one the same response unstreamed gives, stop-string trimming and usage included; the
    body asks for a stream with usage."""
    events = [
        text_event(0, "Par", ["Par"], [11]),
        text_event(0, "is", ["is"], [12]),
        text_event(0, ".", [".", "\n"], [13, 14], finish_reason="stop"),
        USAGE,
    ]
    server.routes["/v1/completions"] = lambda body: sse(Events(events))
    params = SamplingParams(max_tokens=8, stop=("\n",))
    request = GenerateRequest(prompt="Capital?", params=params)
    items = await _items(server, request)
    chunks = [i for i in items if isinstance(i, TokenChunk)]
    assert [(c.text, c.token_ids) for c in chunks] == [
        ("Par", (11,)),
        ("is", (12,)),
        (".", (13, 14)),
    ]
    result = items[-1]
    assert isinstance(result, GenerateResult)
    (body,) = server.bodies("/v1/completions")
    assert (body["stream"], body["stream_options"]) == (True, {"include_usage": True})
    whole = completions_body(
        completion_choice(0, "Paris.", [-0.5] * 4, pieces=["Par", "is", ".", "\n"])
        | {"token_ids": [11, 12, 13, 14]},
        prompt_tokens=5,
        completion_tokens=4,
    )
    server.routes["/v1/completions"] = lambda body: whole
    async with server.worker() as worker:
        plain = await worker.generate(request)
    assert result.completions == plain.completions
    assert result.completions[0].token_ids == (11, 12, 13)  # the stop's token trimmed
    assert result.usage.completion_tokens == plain.usage.completion_tokens == 3
    assert result.usage.prompt_tokens == 5


async def test_a_chat_stream_reads_delta_content(server: FakeOpenAIServer) -> None:
    """Chat chunks: the role-only chunk adds no text; content deltas are the chunks."""

    def chat_event(content: str | None, token: str | None, finish: str | None = None) -> Any:
        delta = {"role": "assistant"} if content is None else {"content": content}
        lp = None if token is None else {"content": [{"token": token, "logprob": -0.1}]}
        return {"choices": [{"index": 0, "delta": delta, "logprobs": lp, "finish_reason": finish}]}

    events = [chat_event(None, None), chat_event("4", "4"), chat_event("!", "!", "stop"), USAGE]
    server.routes["/v1/chat/completions"] = lambda body: sse(Events(events))
    chat = (ChatMessage(role="user", content="2+2?"),)
    items = await _items(server, GenerateRequest(prompt=chat))
    assert [i.text for i in items if isinstance(i, TokenChunk)] == ["", "4", "!"]
    result = items[-1]
    assert isinstance(result, GenerateResult)
    assert (result.completions[0].text, result.completions[0].logprobs) == ("4!", (-0.1, -0.1))
    assert result.completions[0].token_ids == ()  # this server sends no token ids


async def test_seeded_samples_stream_as_one_call_each(server: FakeOpenAIServer) -> None:
    """n=2 with a seed: two streamed calls (seeds s, s+1); their chunks carry the sample's
    index, and the result holds both in order, prompt tokens charged per sample."""

    def answer(body: Any) -> httpx.Response:
        word = f"s{body['seed']}"
        return sse(
            Events([text_event(0, word, [word], [body["seed"]], finish_reason="stop"), USAGE])
        )

    server.routes["/v1/completions"] = answer
    params = SamplingParams(n=2, temperature=0.7, seed=40, max_tokens=4)
    items = await _items(server, GenerateRequest(prompt="Q", params=params))
    chunks = sorted((i.index, i.text) for i in items if isinstance(i, TokenChunk))
    assert chunks == [(0, "s40"), (1, "s41")]
    result = items[-1]
    assert isinstance(result, GenerateResult)
    assert [c.text for c in result.completions] == ["s40", "s41"]
    assert result.usage.prompt_tokens == 10
    assert sorted(b["seed"] for b in server.bodies("/v1/completions")) == [40, 41]


async def test_closing_the_stream_closes_the_http_response(server: FakeOpenAIServer) -> None:
    """A reader that leaves after the first chunk closes the response (the server sees the
    client go, and vLLM aborts the request)."""
    events = Events([text_event(0, f"w{i}", [f"w{i}"], [i]) for i in range(100)], delay_s=0.01)
    server.routes["/v1/completions"] = lambda body: sse(events)
    async with server.worker() as worker:
        async with closing(worker.generate_stream(GenerateRequest(prompt="Q"))) as stream:
            first = await anext(stream)
        assert isinstance(first, TokenChunk)
        assert events.closed


@pytest.mark.parametrize(
    ("response", "error", "match"),
    [
        (lambda: sse(Events([text_event(0, "a", ["a"], [1])])), WorkerFailure, "no usage"),
        (lambda: sse(Events([USAGE], done=False)), WorkerFailure, "ended before \\[DONE\\]"),
        (lambda: httpx.Response(503, text="busy"), WorkerFailure, "HTTP 503"),
        (lambda: httpx.Response(400, text="bad n"), RequestRejected, "HTTP 400"),
        (
            lambda: sse(Events([{"choices": [{"index": 3, "text": "x"}]}])),
            WorkerFailure,
            "beyond the 1 asked",
        ),
    ],
)
async def test_broken_streams_are_worker_failures(
    server: FakeOpenAIServer, response: Any, error: type[Exception], match: str
) -> None:
    """No usage event, no [DONE], an HTTP error status (4xx: rejected), a choice index
    out of range: each is a WorkerFailure saying which."""
    server.routes["/v1/completions"] = lambda body: response()
    with pytest.raises(error, match=match):
        await _items(server, GenerateRequest(prompt="Q"))
