"""The fake server every OpenAIWorker unit test talks to."""

from __future__ import annotations

import pytest

from tests.workers.openai.fake_server import FakeOpenAIServer


@pytest.fixture
def server() -> FakeOpenAIServer:
    return FakeOpenAIServer()
