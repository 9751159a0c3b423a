"""Slow: ``system2 serve --ray``'s app on a one-node cluster: the OpenAI-compatible server
as a Ray Serve ingress behind Serve's HTTP proxy, holding a handle to a ``ray`` model."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

ray = pytest.importorskip("ray")
serve = pytest.importorskip("ray.serve")

from system2.config import parse_config  # noqa: E402
from system2.ray.serve_app import INGRESS_APP, deploy_server  # noqa: E402
from system2.server.auth import ApiKeys  # noqa: E402

pytestmark = pytest.mark.slow

KEY = "test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """The ingress and its model deployed; the server's base URL."""
    if ray.is_initialized():
        ray.shutdown()
    config = parse_config(
        {
            "models": {
                "m": {
                    "kind": "ray",
                    "replica": {"kind": "scripted", "responses": ["The answer is 4."]},
                    "num_cpus": 0.25,
                }
            },
            "policy": {"kind": "fixed", "models": ["m"]},
            "strategy": {"kind": "greedy"},
            "ray": {"num_cpus": 2, "object_store_mb": 128, "namespace": "system2-tests"},
        }
    )
    port = _free_port()
    models = deploy_server(config, ApiKeys([KEY]), host="127.0.0.1", port=port)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the proxy answers 404 until the route is up
            if httpx.get(f"{url}/health").status_code == 200:
                break
            time.sleep(0.5)
        yield url
    finally:
        serve.delete(INGRESS_APP)
        asyncio.run(models["m"].close())
        serve.shutdown()
        ray.shutdown()


def test_the_server_answers_from_ray(server: str) -> None:
    """Models, completions and auth work as in `system2 serve`, through the ingress."""
    assert httpx.get(f"{server}/health").json() == {"status": "ok"}
    assert httpx.get(f"{server}/v1/models").status_code == 401
    models = httpx.get(f"{server}/v1/models", headers=AUTH).json()
    assert [m["id"] for m in models["data"]] == ["default"]
    body = {"model": "default", "messages": [{"role": "user", "content": "2+2?"}]}
    reply = httpx.post(f"{server}/v1/chat/completions", json=body, headers=AUTH, timeout=60)
    assert reply.status_code == 200, reply.text
    assert reply.json()["choices"][0]["message"]["content"] == "The answer is 4."
    assert reply.json()["system2"]["answer"] == "4"


def test_the_server_streams_from_ray(server: str) -> None:
    """An SSE stream passes through Serve's proxy and ends with [DONE]."""
    body = {"model": "default", "stream": True, "messages": [{"role": "user", "content": "2+2?"}]}
    with httpx.stream(
        "POST", f"{server}/v1/chat/completions", json=body, headers=AUTH, timeout=60
    ) as stream:
        lines = [line for line in stream.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "The answer is 4."
