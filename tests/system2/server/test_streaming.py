"""Streams (SSE in OpenAI's chunk format), budgets through the server, and a client that
leaves: its query and every worker call in flight are cancelled."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from fastapi import FastAPI

from tests.system2.server.conftest import (
    AppFactory,
    SlowWorker,
    chat,
    client_for,
    slow_workers,
)
from workers.base import Worker
from workers.scripted import ScriptedWorker, cycle_texts


def events_of(response: httpx.Response) -> list[Any]:
    """The ``data:`` payloads of an SSE body, each checked to be one ``data:`` line and a
    blank line; ``[DONE]`` kept as the string."""
    text = response.text
    assert text.endswith("\n\n")
    events: list[Any] = []
    for block in text.split("\n\n")[:-1]:
        assert block.startswith("data: "), block
        assert "\n" not in block
        payload = block[len("data: ") :]
        events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events


async def test_chat_stream_has_progress_then_answer_then_usage(client: httpx.AsyncClient) -> None:
    """A chat stream: the role first, progress (samples, running tally) in ``system2``,
    the answer as a content delta, a last chunk with finish_reason and usage, [DONE]."""
    response = await client.post("/v1/chat/completions", json=chat("rounds", stream=True))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = events_of(response)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    notes = [c["system2"] for c in chunks if "system2" in c]
    kinds = [n.get("event") for n in notes]
    assert kinds[:2] == ["started", "planned"]
    progress = [n for n in notes if n.get("event") == "progress"]
    samples = [p["samples"] for p in progress]  # one a round; unanimous: stops early
    assert samples == list(range(1, len(samples) + 1))
    assert progress[-1]["tally"] == {"4": len(samples)}
    content = [c["choices"][0]["delta"].get("content") for c in chunks[1:]]
    assert [t for t in content if t] == ["2 + 2 = 4. The answer is 4."]
    last = chunks[-1]
    assert last["choices"][0]["finish_reason"] == "stop"
    assert last["usage"]["completion_tokens"] == len(samples) * 9
    assert last["system2"]["answer"] == "4"
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])


async def test_text_completion_stream(client: httpx.AsyncClient) -> None:
    """/v1/completions streams ``text_completion`` chunks with the text in ``text``."""
    response = await client.post(
        "/v1/completions", json={"model": "greedy", "prompt": "2 + 2?", "stream": True}
    )
    chunks = events_of(response)[:-1]
    assert {c["object"] for c in chunks} == {"text_completion"}
    assert "".join(c["choices"][0]["text"] for c in chunks) == "2 + 2 = 4. The answer is 4."
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


async def test_stream_of_a_failed_query_ends_with_an_error(app_factory: AppFactory) -> None:
    """A query that fails mid-stream sends OpenAI's error object, then [DONE]."""
    from workers.scripted import ScriptedWorker

    def broken(request: object, index: int) -> str:
        raise RuntimeError("backend down")

    app = app_factory(
        workers={"m": ScriptedWorker("m", broken), "other": ScriptedWorker("other", broken)}
    )
    async with client_for(app) as client:
        events = events_of(
            await client.post("/v1/chat/completions", json=chat("greedy", stream=True))
        )
    assert events[-1] == "[DONE]"
    assert "backend down" in events[-2]["error"]["message"]


async def test_token_budget_returns_the_best_answer_so_far(client: httpx.AsyncClient) -> None:
    """``system2.max_total_tokens`` stops sampling once spent: finish_reason ``budget``,
    the majority so far, and usage counting every token spent."""
    body = (
        await client.post(
            "/v1/chat/completions", json=chat("rounds", system2={"max_total_tokens": 30})
        )
    ).json()
    assert body["choices"][0]["finish_reason"] == "budget"
    assert body["system2"]["stopped_by"] == "budget"
    assert body["system2"]["answer"] == "4"
    assert 30 <= body["usage"]["total_tokens"] < 60
    assert body["system2"]["candidates"] < 10


async def test_deadline_in_a_stream(app_factory: AppFactory) -> None:
    """``system2.deadline_s`` cancels the query at the deadline; the stream still ends with
    the best answer, finish_reason ``deadline``."""
    async with client_for(app_factory(workers=slow_workers(0.05))) as client:
        response = await client.post(
            "/v1/chat/completions", json=chat("rounds", stream=True, system2={"deadline_s": 0.18})
        )
    chunks = events_of(response)[:-1]
    assert chunks[-1]["choices"][0]["finish_reason"] == "deadline"
    assert chunks[-1]["system2"]["answer"] == "4"


async def test_request_timeout_caps_the_deadline(app_factory: AppFactory) -> None:
    """``server.request_timeout_s`` is every query's deadline at most."""
    app = app_factory(workers=slow_workers(0.05), request_timeout_s=0.2)
    async with client_for(app) as client:
        body = (await client.post("/v1/chat/completions", json=chat("rounds"))).json()
    assert body["choices"][0]["finish_reason"] == "deadline"


async def test_stream_records_time_to_first_token(client: httpx.AsyncClient) -> None:
    """A stream's first content is timed in the TTFT histogram, by profile."""
    await client.post("/v1/chat/completions", json=chat("greedy", stream=True))
    text = (await client.get("/metrics")).text
    assert 'system2_time_to_first_token_seconds_count{profile="greedy"} 1.0' in text
    assert (
        'system2_requests_total{endpoint="chat.completions",profile="greedy",status="200"}' in text
    )


Send = Callable[[dict[str, Any]], Awaitable[None]]


async def _call_then_leave(
    app: FastAPI, body: dict[str, Any], leave_when: Callable[[], Awaitable[None]]
) -> list[dict[str, Any]]:
    """Drive the ASGI app as uvicorn does (ASGI 2.3) and disconnect once ``leave_when``
    returns; the messages the app sent."""
    raw = json.dumps(body).encode()
    sent: list[dict[str, Any]] = []
    gone = asyncio.Event()
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": raw, "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/chat/completions",
        "raw_path": b"/v1/chat/completions",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(raw)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }
    call = asyncio.create_task(app(scope, receive, send))
    await leave_when()
    gone.set()
    await asyncio.wait_for(call, timeout=5)
    return sent


async def test_disconnect_mid_stream_cancels_every_worker_call(app_factory: AppFactory) -> None:
    """A streaming client that leaves cancels its query: each in-flight worker call sees
    the cancellation, the slot is freed, and the request is counted as 499."""
    workers = slow_workers(30.0)
    app = app_factory(workers=workers)
    m, other = workers["m"], workers["other"]
    assert isinstance(m, SlowWorker)
    assert isinstance(other, SlowWorker)

    async def both_in_flight() -> None:
        await m.in_flight.wait()
        await other.in_flight.wait()

    sent = await _call_then_leave(app, chat("both", stream=True), both_in_flight)
    assert sent[0]["status"] == 200
    assert (m.cancelled, other.cancelled) == (1, 1)
    state = app.state.system2
    assert state.admission.idle
    async with client_for(app) as client:
        text = (await client.get("/metrics")).text
    assert 'profile="both",status="499"} 1.0' in text
    assert 'system2_worker_calls_total{kind="generate",model="m",outcome="cancelled"} 1.0' in text


async def test_disconnect_while_waiting_for_a_plain_answer(app_factory: AppFactory) -> None:
    """A non-streaming client that leaves cancels its query just the same."""
    workers = slow_workers(30.0)
    app = app_factory(workers=workers)
    m = workers["m"]
    assert isinstance(m, SlowWorker)
    sent = await _call_then_leave(app, chat("greedy"), m.in_flight.wait)
    assert m.cancelled == 1
    assert sent[0]["status"] == 499
    assert app.state.system2.admission.idle


async def _timed_messages(app: FastAPI, body: dict[str, Any]) -> list[tuple[float, bytes]]:
    """Drive the ASGI app as uvicorn does and time each body part it sends."""
    raw = json.dumps(body).encode()
    parts: list[tuple[float, bytes]] = []
    started = time.perf_counter()
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": raw, "more_body": False}
        await asyncio.Event().wait()  # the client stays until the stream ends
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body" and message.get("body"):
            parts.append((time.perf_counter() - started, message["body"]))

    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/chat/completions",
        "raw_path": b"/v1/chat/completions",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }
    await asyncio.wait_for(app(scope, receive, send), timeout=10)
    return parts


async def test_a_single_path_stream_sends_tokens_as_the_engine_makes_them(
    app_factory: AppFactory,
) -> None:
    """Greedy on one model: each token goes out as a content chunk when the worker makes
    it, the first long before the last; together they are the answer's text, sent once."""
    text = "two plus two makes four, so the answer is 4."
    workers: dict[str, Worker] = {
        name: ScriptedWorker(name, cycle_texts([text]), token_delay_s=0.03)
        for name in ("m", "other")
    }
    parts = await _timed_messages(app_factory(workers=workers), chat("greedy", stream=True))
    content = []
    for at, part in parts:
        for block in part.decode().split("\n\n"):
            if block.startswith("data: {"):
                delta = json.loads(block[6:])["choices"][0]["delta"]
                if delta.get("content"):
                    content.append((at, delta["content"]))
    assert "".join(c for _, c in content) == text
    assert len(content) == len(text.split())
    assert content[-1][0] - content[0][0] >= (len(content) - 2) * 0.03


async def test_exact_stop_per_request_cancels_the_samples_that_cannot_matter(
    app_factory: AppFactory,
) -> None:
    """``system2: {exact_stop: true}`` on a five-sample vote: once three agree, the two
    samples still running are cancelled; the summary says what was cancelled and saved."""
    texts = [f"{'so ' * (4 * k)}The answer is 4." for k in range(5)]
    workers: dict[str, Worker] = {
        name: ScriptedWorker(name, cycle_texts(texts), token_delay_s=0.01)
        for name in ("m", "other")
    }
    async with client_for(app_factory(workers=workers)) as client:
        response = await client.post(
            "/v1/chat/completions", json=chat("math-sc5", system2={"exact_stop": True})
        )
    s2 = response.json()["system2"]
    assert s2["answer"] == "4"
    assert s2["vote"]["counts"] == {"4": 3.0}
    assert s2["vote"]["stopped_early"]
    count = s2["exact_stop"]
    assert (count["samples_finished"], count["cancelled_in_flight"]) == (3, 2)
    assert count["generated_tokens"] == response.json()["usage"]["completion_tokens"]
