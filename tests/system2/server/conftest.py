"""Apps on scripted workers, and clients talking to them in-process (ASGI transport)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import yaml
from fastapi import FastAPI

from system2.config import System2Config, parse_config
from system2.server import ApiKeys, create_app
from workers.base import GenerateRequest, GenerateResult, Worker
from workers.scripted import ScriptedWorker, cycle_texts

CONFIG = """
models:
  m: {kind: scripted, responses: ["2 + 2 = 4. The answer is 4."]}
  other: {kind: scripted, responses: ["The answer is 5."]}
policy: {kind: fixed, models: [m]}
strategy: {kind: self_consistency, n: 3, max_tokens: 32}
profiles:
  math-sc5:
    strategy: {kind: self_consistency, n: 5, max_tokens: 32}
    description: five samples, majority vote
  greedy:
    strategy: {kind: greedy, max_tokens: 32}
  both:
    policy: {kind: all, models: [m, other]}
  rounds:
    strategy:
      kind: self_consistency
      n: 10
      max_tokens: 32
      early_stop: {round_size: 1, min_samples: 10, min_margin: 1.0}
server: {max_running: 2, max_waiting: 1, request_timeout_s: 30, max_n: 16}
"""


def make_config(text: str = CONFIG, **server: Any) -> System2Config:
    data = yaml.safe_load(text)
    data.setdefault("server", {}).update(server)
    return parse_config(data, source="test.yaml")


class SlowWorker(ScriptedWorker):
    """A scripted worker whose calls take ``delay_s`` of awaited time; it counts the calls
    started and those cancelled in flight."""

    def __init__(self, name: str, texts: list[str], delay_s: float = 0.0) -> None:
        super().__init__(name, cycle_texts(texts))
        self.delay_s = delay_s
        self.started = 0
        self.cancelled = 0
        self.in_flight = asyncio.Event()

    async def generate(self, request: GenerateRequest) -> GenerateResult:
        self.started += 1
        self.in_flight.set()
        try:
            await asyncio.sleep(self.delay_s)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return await super().generate(request)


def slow_workers(delay_s: float, texts: list[str] | None = None) -> dict[str, Worker]:
    texts = texts or ["2 + 2 = 4. The answer is 4."]
    return {"m": SlowWorker("m", texts, delay_s), "other": SlowWorker("other", texts, delay_s)}


AppFactory = Callable[..., FastAPI]


@pytest.fixture
def app_factory() -> AppFactory:
    """Build an app on scripted workers: ``app_factory(workers=..., keys=[...], **server)``."""

    def build(
        *,
        config: System2Config | None = None,
        workers: dict[str, Worker] | None = None,
        keys: list[str] | None = None,
        **server: Any,
    ) -> FastAPI:
        return create_app(
            config or make_config(**server), workers=workers, api_keys=ApiKeys(keys or [])
        )

    return build


def client_for(app: FastAPI, **headers: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test", headers=headers
    )


@pytest.fixture
async def client(app_factory: AppFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app_factory()) as c:
        yield c


def chat(model: str = "default", question: str = "What is 2 + 2?", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": question}], **extra}


def assert_openai_error(
    response: httpx.Response, status: int, param: str | None = None
) -> dict[str, Any]:
    """``response`` has ``status`` and OpenAI's error body (naming ``param`` if given)."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str)
    assert error["message"]
    if param is not None:
        assert error["param"] == param, error
    return error
