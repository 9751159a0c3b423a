"""The OpenAI-shaped endpoints on scripted workers: models, completions, usage, the
``system2`` field, per-request overrides and every 4xx the flow can give."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.system2.server.conftest import (
    AppFactory,
    assert_openai_error,
    chat,
    client_for,
    make_config,
)


async def test_health_ready_and_models(client: httpx.AsyncClient) -> None:
    """/health and /ready answer; /v1/models lists every profile with its plan."""
    assert (await client.get("/health")).json() == {"status": "ok"}
    ready = await client.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["ready"] is True
    models = (await client.get("/v1/models")).json()
    assert models["object"] == "list"
    ids = [m["id"] for m in models["data"]]
    assert ids == ["math-sc5", "greedy", "both", "rounds"]
    card = models["data"][0]
    assert card["object"] == "model"
    assert card["system2"]["strategy"]["n"] == 5
    assert card["system2"]["description"] == "five samples, majority vote"
    one = await client.get("/v1/models/greedy")
    assert one.json()["system2"]["strategy"]["kind"] == "greedy"
    assert_openai_error(await client.get("/v1/models/nope"), 404, "model")


async def test_a_config_without_profiles_serves_default(app_factory: AppFactory) -> None:
    """No ``profiles:``: one model id, ``default``, running the config's own plan."""
    config = make_config(
        "models: {m: {kind: scripted, responses: ['The answer is 4.']}}\n"
        "policy: {kind: fixed, models: [m]}\n"
    )
    async with client_for(app_factory(config=config)) as client:
        ids = [m["id"] for m in (await client.get("/v1/models")).json()["data"]]
        assert ids == ["default"]
        body = (await client.post("/v1/chat/completions", json=chat("default"))).json()
    assert body["system2"]["answer"] == "4"
    assert body["system2"]["plan"]["strategy"]["kind"] == "self_consistency"


async def test_chat_completion_is_openai_shaped(client: httpx.AsyncClient) -> None:
    """A chat completion has OpenAI's fields; usage sums every sample; ``system2`` holds
    the summary (plan, tally, per-model usage)."""
    response = await client.post("/v1/chat/completions", json=chat("math-sc5"))
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    assert body["model"] == "math-sc5"
    (choice,) = body["choices"]
    assert choice["message"] == {"role": "assistant", "content": "2 + 2 = 4. The answer is 4."}
    assert choice["finish_reason"] == "stop"
    s2 = body["system2"]
    assert s2["answer"] == "4"
    assert s2["vote"]["counts"] == {"4": 5.0}
    assert s2["candidates"] == 5
    assert s2["plan"]["models"] == ["m"]
    per_model = s2["usage"]["per_model"]["m"]
    usage = body["usage"]
    assert usage["completion_tokens"] == per_model["completion_tokens"] == 5 * 9  # nine words each
    assert usage["prompt_tokens"] == per_model["prompt_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert "trace" not in s2


async def test_text_completion_and_the_full_trace(client: httpx.AsyncClient) -> None:
    """/v1/completions answers a prompt; ``system2.trace`` asks for the whole trace."""
    response = await client.post(
        "/v1/completions",
        json={"model": "both", "prompt": "What is 2 + 2?", "system2": {"trace": True}},
    )
    body = response.json()
    assert body["object"] == "text_completion"
    assert body["id"].startswith("cmpl-")
    assert body["choices"][0]["text"]
    trace = body["system2"]["trace"]
    assert len(trace["candidates"]) == 6  # n = 3 on each of two models
    assert set(body["system2"]["usage"]["per_model"]) == {"m", "other"}
    assert body["usage"]["completion_tokens"] == sum(
        g["completion_tokens"] for g in trace["generations"]
    )


@pytest.mark.parametrize(
    ("system2", "check"),
    [
        ({"n": 2}, lambda s: s["candidates"] == 2),
        ({"kind": "greedy"}, lambda s: s["plan"]["strategy"]["kind"] == "greedy"),
        ({"temperature": 0.3}, lambda s: s["plan"]["strategy"]["temperature"] == 0.3),
        ({"max_tokens": 3}, lambda s: s["plan"]["strategy"]["max_tokens"] == 3),
        ({"task": "text"}, lambda s: s["answer"] == "2 + 2 = 4. The answer is 4."),
    ],
    ids=["n", "kind", "temperature", "max_tokens", "task"],
)
async def test_system2_overrides_the_profile_per_request(
    client: httpx.AsyncClient, system2: dict[str, Any], check: Any
) -> None:
    """Fields of ``system2`` change the profile's strategy (or task) for one request."""
    body = (
        await client.post("/v1/chat/completions", json=chat("math-sc5", system2=system2))
    ).json()
    assert check(body["system2"]), body["system2"]


async def test_standard_sampling_fields_set_the_strategy(client: httpx.AsyncClient) -> None:
    """OpenAI's temperature/max_tokens set the strategy's fields; ``system2`` wins."""
    body = (
        await client.post(
            "/v1/chat/completions",
            json=chat("math-sc5", temperature=0.2, max_tokens=9, system2={"max_tokens": 11}),
        )
    ).json()
    strategy = body["system2"]["plan"]["strategy"]
    assert (strategy["temperature"], strategy["max_tokens"]) == (0.2, 11)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (chat("math-sc5", system2={"n": 0}), "system2.n"),
        (chat("math-sc5", system2={"n": "five"}), "system2.n"),
        (chat("math-sc5", system2={"n": 1000}), "system2.n"),
        (chat("math-sc5", system2={"temprature": 0.5}), "system2.temprature"),
        (chat("math-sc5", system2={"kind": "beam"}), "system2.kind"),
        (chat("math-sc5", system2={"kind": "system2", "n": 2}), "system2"),
        (chat("math-sc5", system2={"vote": "verifier"}), "system2.kind"),
        (chat("math-sc5", system2={"max_total_tokens": -5}), "system2.max_total_tokens"),
        (chat("math-sc5", system2={"deadline_s": 0}), "system2.deadline_s"),
        (chat("math-sc5", system2={"trace": "yes"}), "system2.trace"),
        (chat("math-sc5", system2={"task": "poetry"}), "system2.task"),
        (chat("math-sc5", temperature=0), "temperature"),
        (chat("greedy", temperature=0.5), "temperature"),
        (chat("math-sc5", n=2), "n"),
        (chat("math-sc5", tools=[{"type": "function"}]), "tools"),
        (chat("math-sc5", logprobs=True), "logprobs"),
        (chat("math-sc5", frobnicate=1), "frobnicate"),
        (chat("math-sc5", stream="yes"), "stream"),
        ({"model": "math-sc5"}, "messages"),
        ({"model": "math-sc5", "messages": []}, "messages"),
        (
            {
                "model": "math-sc5",
                "messages": [{"role": "system", "content": "x"}, {"role": "user", "content": "y"}],
            },
            "messages",
        ),
        (chat("math-sc5", question="   "), "messages"),
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
    ],
)
async def test_bad_fields_are_400s_naming_the_field(
    client: httpx.AsyncClient, body: dict[str, Any], param: str
) -> None:
    """Each bad field is refused with 400 and OpenAI's error body naming it."""
    error = assert_openai_error(await client.post("/v1/chat/completions", json=body), 400, param)
    assert error["type"] == "invalid_request_error"


async def test_a_bad_value_is_named_with_the_value(client: httpx.AsyncClient) -> None:
    """The message says which field, what was wrong and the value sent."""
    response = await client.post("/v1/chat/completions", json=chat("math-sc5", system2={"n": 0}))
    message = assert_openai_error(response, 400, "system2.n")["message"]
    assert "greater than or equal to 1" in message
    assert "(got 0)" in message


async def test_unknown_profile_is_404(client: httpx.AsyncClient) -> None:
    """A model that is no profile: 404 model_not_found, listing the served ones."""
    error = assert_openai_error(
        await client.post("/v1/chat/completions", json=chat("gpt-4")), 404, "model"
    )
    assert error["code"] == "model_not_found"
    assert "math-sc5" in error["message"]


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"", b"[1, 2]", b'{"model": NaN}', b"\xff\xfe"],
    ids=["malformed", "empty", "array", "nan", "not-utf8"],
)
async def test_bodies_that_are_not_a_json_object_are_400(
    client: httpx.AsyncClient, content: bytes
) -> None:
    """Malformed, empty or non-object JSON bodies get 400 in OpenAI's shape."""
    response = await client.post(
        "/v1/chat/completions", content=content, headers={"content-type": "application/json"}
    )
    assert_openai_error(response, 400)


async def test_unknown_routes_and_methods_are_openai_errors(client: httpx.AsyncClient) -> None:
    """404 and 405 from routing are in OpenAI's error shape too."""
    assert_openai_error(await client.get("/v1/nothing"), 404)
    assert_openai_error(await client.get("/v1/chat/completions"), 405)


async def test_a_failed_query_is_a_502_saying_why(app_factory: AppFactory) -> None:
    """A query whose worker fails answers 502 with the recorded failure."""
    from workers.scripted import ScriptedWorker

    def broken(request: object, index: int) -> str:
        raise RuntimeError("backend down")

    workers = {"m": ScriptedWorker("m", broken), "other": ScriptedWorker("other", broken)}
    async with client_for(app_factory(workers=workers)) as client:
        response = await client.post("/v1/chat/completions", json=chat("greedy"))
    error = assert_openai_error(response, 502)
    assert "backend down" in error["message"]
    assert error["code"] == "query_failed"


async def test_metrics_count_requests_tokens_and_votes(client: httpx.AsyncClient) -> None:
    """/metrics exposes requests by profile and status, tokens by model, worker calls,
    vote margins, latency and the queue gauges."""
    await client.post("/v1/chat/completions", json=chat("math-sc5"))
    await client.post("/v1/chat/completions", json=chat("nope"))
    text = (await client.get("/metrics")).text
    assert (
        'system2_requests_total{endpoint="chat.completions",profile="math-sc5",status="200"} 1.0'
        in text
    )
    assert (
        'system2_requests_total{endpoint="chat.completions",profile="unknown",status="404"} 1.0'
        in text
    )
    assert 'system2_tokens_total{kind="completion",model="m"} 45.0' in text
    assert 'system2_worker_calls_total{kind="generate",model="m",outcome="ok"} 1.0' in text
    assert 'system2_vote_margin_count{profile="math-sc5"} 1.0' in text
    assert "system2_request_seconds_bucket" in text
    assert "system2_queue_depth 0.0" in text
    assert "system2_queries_running 0.0" in text
