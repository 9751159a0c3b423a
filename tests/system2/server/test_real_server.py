"""The real server (uvicorn) called with the official ``openai`` client: scripted workers
in the fast tier, SmolLM2 on CPU in the slow one; and SIGTERM's drain on a live server."""

from __future__ import annotations

import signal
import threading
import time
from typing import Any

import httpx
import openai
import pytest
import yaml

from system2.config import parse_config
from system2.server import ApiKeys, create_app
from tests.system2.server.conftest import SlowWorker, make_config, slow_workers
from tests.system2.server.live import live_server
from workers.base import Worker
from workers.scripted import ScriptedWorker, cycle_texts

KEY = "test-key"


def _client(url: str, key: str = KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=600)


def _dump(obj: Any) -> dict[str, Any]:
    data: dict[str, Any] = obj.to_dict()
    return data


def _exercise(client: openai.OpenAI, model: str, *, expect_answer: str | None) -> None:
    """Plain and streamed chat, a text completion, and the errors, through the client."""
    reply = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "What is 2 + 2?"}],
        extra_body={"system2": {"trace": True}},
    )
    text = reply.choices[0].message.content
    assert text
    s2 = _dump(reply)["system2"]
    assert reply.usage is not None
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    assert reply.usage.completion_tokens == sum(
        g["completion_tokens"] for g in s2["trace"]["generations"]
    )
    if expect_answer is not None:
        assert s2["answer"] == expect_answer

    stream = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "What is 2 + 2?"}], stream=True
    )
    chunks = list(stream)
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed
    last = chunks[-1]
    assert last.choices[0].finish_reason in ("stop", "length")
    assert last.usage is not None
    assert last.usage.completion_tokens > 0
    notes = [_dump(c).get("system2", {}).get("event") for c in chunks]
    assert "planned" in notes

    done = client.completions.create(model=model, prompt="What is 2 + 2?")
    assert done.choices[0].text
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": "x"}],
            extra_body={"system2": {"n": -1}},
        )
    assert bad.value.status_code == 400
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])


def _stream_timing(client: openai.OpenAI, model: str) -> tuple[float, float, str, int]:
    """A streamed chat through the client: seconds to the first content, seconds to the
    end, the text, and how many content chunks carried it."""
    started = time.perf_counter()
    stream = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "What is 2 + 2?"}], stream=True
    )
    first, pieces = None, []
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
            first = first if first is not None else time.perf_counter() - started
    assert first is not None
    return first, time.perf_counter() - started, "".join(pieces), len(pieces)


def test_the_official_client_gets_tokens_before_the_answer_is_done() -> None:
    """Streaming greedy through the live server: the client reads the first token long
    before the last (the worker makes one every 50 ms), in many chunks."""
    text = "two plus two makes four, so the answer is 4."
    workers: dict[str, Worker] = {
        name: ScriptedWorker(name, cycle_texts([text]), token_delay_s=0.05)
        for name in ("m", "other")
    }
    app = create_app(make_config(), workers=workers, api_keys=ApiKeys([KEY]))
    with live_server(app) as live:
        first, total, streamed, chunks = _stream_timing(_client(live.url), "greedy")
    assert streamed == text
    assert chunks == len(text.split())
    assert total >= 0.4  # nine words, 50 ms each
    assert first < total / 3


def test_openai_client_against_the_server_on_scripted_workers() -> None:
    """The official client lists the profiles, gets answers (streamed too) with usage and
    the system2 field, and gets its own exception types for errors."""
    app = create_app(make_config(), api_keys=ApiKeys([KEY]))
    with live_server(app) as live:
        client = _client(live.url)
        assert [m.id for m in client.models.list()] == ["math-sc5", "greedy", "both", "rounds"]
        _exercise(client, "math-sc5", expect_answer="4")
        with pytest.raises(openai.AuthenticationError):
            _client(live.url, key="wrong").models.list()


def test_sigterm_drains_a_live_server() -> None:
    """On SIGTERM the live server turns /ready to 503 and refuses new queries with 503,
    lets the running query finish, then stops by itself."""
    workers = slow_workers(0.5)
    app = create_app(make_config(), workers=workers)
    with live_server(app) as live:
        results: dict[str, httpx.Response] = {}

        def ask() -> None:
            body = {"model": "greedy", "messages": [{"role": "user", "content": "2 + 2?"}]}
            results["running"] = httpx.post(
                f"{live.url}/v1/chat/completions", json=body, timeout=30
            )

        thread = threading.Thread(target=ask)
        thread.start()
        m = workers["m"]
        assert isinstance(m, SlowWorker)
        while not m.started:
            time.sleep(0.01)
        live.server.handle_exit(signal.SIGTERM, None)
        with httpx.Client(base_url=live.url) as probe:
            assert probe.get("/ready").status_code == 503
            body = {"model": "greedy", "messages": [{"role": "user", "content": "x"}]}
            refused = probe.post("/v1/chat/completions", json=body)
            assert refused.status_code == 503
            assert refused.json()["error"]["code"] == "draining"
        thread.join(timeout=30)
        assert results["running"].status_code == 200
        deadline = time.monotonic() + 10
        while not live.server.should_exit and time.monotonic() < deadline:
            time.sleep(0.05)
        assert live.server.should_exit


@pytest.mark.slow
def test_openai_client_against_smollm2(small_model_name: str) -> None:
    """The server on the embedded SmolLM2 (CPU), through the official client, streaming
    included."""
    config = parse_config(
        yaml.safe_load(
            f"""
models:
  smol: {{kind: transformers, model: {small_model_name}, threads: 2}}
policy: {{kind: fixed, models: [smol]}}
strategy: {{kind: greedy, max_tokens: 24}}
task: text
profiles:
  greedy: {{}}
  sc2: {{strategy: {{kind: self_consistency, n: 2, max_tokens: 24, seed: 0}}}}
"""
        )
    )
    app = create_app(config, api_keys=ApiKeys([KEY]))
    with live_server(app) as live:
        client = _client(live.url)
        assert {m.id for m in client.models.list()} == {"greedy", "sc2"}
        _exercise(client, "greedy", expect_answer=None)
        _exercise(client, "sc2", expect_answer=None)
        first, total, streamed, chunks = _stream_timing(client, "greedy")
        assert streamed
        assert chunks >= 3  # token by token, not one chunk at the end
        assert first < total
        print(f"SmolLM2 greedy via the server: first token {first:.3f}s of {total:.3f}s")
