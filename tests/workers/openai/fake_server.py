"""``FakeOpenAIServer``, a scripted test double of an OpenAI-compatible server
(httpx.MockTransport), and builders of the response bodies it returns."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx

from workers.openai.worker import OpenAIWorker

__all__ = ["BASE", "FakeOpenAIServer", "Handler", "completion_choice", "completions_body"]

BASE = "http://fake:8000"
Handler = Callable[[Any], Any]


class FakeOpenAIServer:
    """Test double of an OpenAI-compatible server: one scripted handler per path (it gets
    the JSON body and returns a response, or raises an httpx error); records each request."""

    def __init__(self) -> None:
        self.routes: dict[str, Handler] = {}
        self.requests: list[tuple[str, str, Any, httpx.Headers]] = []
        self.timeouts: list[dict[str, float]] = []

    async def handle(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        self.requests.append((request.method, request.url.path, body, request.headers))
        self.timeouts.append(request.extensions["timeout"])
        handler = self.routes.get(request.url.path)
        if handler is None:
            return httpx.Response(404, json={"detail": "Not Found"})
        answer = handler(body)
        if asyncio.iscoroutine(answer):
            answer = await answer
        return answer if isinstance(answer, httpx.Response) else httpx.Response(200, json=answer)

    def worker(self, **kwargs: Any) -> OpenAIWorker:
        return OpenAIWorker(
            BASE + "/v1/",
            model="served-name",
            model_name="m",
            transport=httpx.MockTransport(self.handle),
            **kwargs,
        )

    def bodies(self, path: str) -> list[Any]:
        return [body for _, p, body, _ in self.requests if p == path]


def completion_choice(
    index: int, text: str, logprobs: list[Any], *, pieces: list[str] | None = None, **extra: Any
) -> Any:
    """One /v1/completions choice; ``pieces``: the tokens' texts ("x" each by default)."""
    tokens = ["x"] * len(logprobs) if pieces is None else pieces
    return {
        "index": index,
        "text": text,
        "logprobs": {"tokens": tokens, "token_logprobs": logprobs},
        "finish_reason": "stop",
        **extra,
    }


def completions_body(*choices: Any, prompt_tokens: int = 5, completion_tokens: int = 3) -> Any:
    return {
        "object": "text_completion",
        "choices": list(choices),
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens},
    }
