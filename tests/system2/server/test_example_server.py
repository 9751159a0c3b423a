"""The example server config serves every profile, and the example client runs against
it (scripted workers stand in for the models)."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest
from fastapi import FastAPI

from system2.config import load_config
from system2.server import create_app
from tests.system2.server.conftest import chat, client_for
from tests.system2.server.live import live_server
from workers.base import GenerateRequest
from workers.scripted import ScriptedWorker

EXAMPLE = Path(__file__).parents[3] / "examples" / "server"


def _reply(request: GenerateRequest, index: int) -> str:
    if "```" in str(request.prompt) or "python" in str(request.prompt).lower():
        return "```python\ndef speed():\n    return 80\n```"
    return "60 km in 0.75 h is 80 km/h. The answer is 80."


def _app() -> FastAPI:
    config = load_config(EXAMPLE / "server.yaml")
    workers = {name: ScriptedWorker(name, _reply) for name in config.models}
    return create_app(config, workers=workers)


@pytest.mark.parametrize("profile", ["greedy", "math-sc5", "code-rsa", "routed"])
async def test_every_example_profile_answers(profile: str) -> None:
    """Each profile of examples/server/server.yaml answers a question."""
    async with client_for(_app()) as client:
        response = await client.post("/v1/chat/completions", json=chat(profile))
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"]


def test_example_client_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """examples/server/client.py lists the profiles, asks, and streams, end to end."""
    client = runpy.run_path(str(EXAMPLE / "client.py"))
    with live_server(_app()) as live:
        client["main"]("What is 60 km in 45 minutes in km/h?", live.url)
    out = capsys.readouterr().out
    assert "profiles: greedy, math-sc5, code-rsa, routed" in out
    assert "math-sc5 (n=3): 80" in out
    assert "[finish: stop;" in out
