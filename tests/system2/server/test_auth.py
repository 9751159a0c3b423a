"""API keys: Bearer auth on everything but /health, constant-time comparison, 401s in
OpenAI's shape, and keys from the environment or a file."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from system2.server import auth
from system2.server.auth import ApiKeys, is_loopback
from tests.system2.server.conftest import AppFactory, assert_openai_error, chat, client_for


@pytest.fixture
def locked(app_factory: AppFactory) -> httpx.AsyncClient:
    return client_for(app_factory(keys=["key-one", "key-two"]))


@pytest.mark.parametrize("path", ["/v1/models", "/ready", "/metrics", "/v1/models/greedy"])
async def test_every_route_but_health_needs_a_key(locked: httpx.AsyncClient, path: str) -> None:
    """Without a key, every route except /health is 401 with OpenAI's error body."""
    async with locked as client:
        response = await client.get(path)
        error = assert_openai_error(response, 401)
        assert error["type"] == "authentication_error"
        assert error["code"] == "invalid_api_key"
        assert response.headers["www-authenticate"] == "Bearer"
        assert (await client.get("/health")).status_code == 200


@pytest.mark.parametrize(
    "header",
    ["Bearer wrong", "Bearer key-one-and-more", "Basic key-one", "key-one", "Bearer ", "Bearer"],
)
async def test_wrong_keys_are_refused(locked: httpx.AsyncClient, header: str) -> None:
    """A wrong key, a longer one, another scheme or no scheme: 401."""
    async with locked as client:
        response = await client.post(
            "/v1/chat/completions", json=chat("greedy"), headers={"Authorization": header}
        )
    assert_openai_error(response, 401)


async def test_any_configured_key_is_accepted(locked: httpx.AsyncClient) -> None:
    """Each configured key opens the API (scheme case-insensitive)."""
    async with locked as client:
        for header in ("Bearer key-one", "bearer key-two"):
            response = await client.post(
                "/v1/chat/completions", json=chat("greedy"), headers={"Authorization": header}
            )
            assert response.status_code == 200, response.text


def test_every_key_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """``accepts`` compares with hmac.compare_digest against every key, even after a match."""
    calls: list[tuple[bytes, bytes]] = []

    def counting(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return a == b

    monkeypatch.setattr(auth.hmac, "compare_digest", counting)
    keys = ApiKeys(["a", "b", "c"])
    assert keys.accepts("a")
    assert len(calls) == 3
    assert not keys.accepts("z")


def test_keys_from_environment_and_file(tmp_path: Path) -> None:
    """Keys come from SYSTEM2_API_KEYS (comma-separated) and a file (comments skipped)."""
    key_file = tmp_path / "keys"
    key_file.write_text("# team keys\nfile-key\n\n  spaced  \n")
    keys = ApiKeys.load(key_file, environ={"SYSTEM2_API_KEYS": "env-1, env-2,,"})
    assert len(keys) == 4
    assert all(keys.accepts(k) for k in ("env-1", "env-2", "file-key", "spaced"))
    assert not ApiKeys.load(environ={})


def test_a_key_file_must_hold_a_key(tmp_path: Path) -> None:
    """An empty or unreadable key file is an error, never an open server."""
    empty = tmp_path / "empty"
    empty.write_text("# nothing\n")
    with pytest.raises(ValueError, match="holds no key"):
        ApiKeys.load(empty, environ={})
    with pytest.raises(ValueError, match="cannot read"):
        ApiKeys.load(tmp_path / "missing", environ={})


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("localhost", True), ("::1", True), ("0.0.0.0", False),
     ("10.1.2.3", False), ("example.com", False)],
)  # fmt: skip
def test_loopback_addresses(host: str, loopback: bool) -> None:
    """Only loopback addresses count as private to this machine."""
    assert is_loopback(host) is loopback
