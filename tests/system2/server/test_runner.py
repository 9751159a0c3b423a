"""``system2 serve`` and its runner: the refusal to open a network address without keys,
the SIGTERM drain of ``DrainingServer``, and the multi-worker app factory."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import uvicorn
from typer.testing import CliRunner

from system2.cli.main import app as cli
from system2.server import ApiKeys, create_app
from system2.server.runner import (
    CONFIG_ENV,
    KEY_FILE_ENV,
    DrainingServer,
    ServeError,
    app_from_env,
    serve,
)
from tests.system2.server.conftest import CONFIG, make_config


def _config_file(tmp_path: Path) -> Path:
    path = tmp_path / "serve.yaml"
    path.write_text(CONFIG)
    return path


def test_serve_refuses_a_network_address_without_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Binding 0.0.0.0 without keys is refused (before any model loads or port binds)."""
    monkeypatch.delenv("SYSTEM2_API_KEYS", raising=False)
    with pytest.raises(ServeError, match="--insecure-no-auth"):
        serve(_config_file(tmp_path), host="0.0.0.0")


def test_cli_serve_says_why_it_will_not_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli_runner: CliRunner
) -> None:
    """The CLI prints the refusal and exits 2; a bad config is reported the same way."""
    monkeypatch.delenv("SYSTEM2_API_KEYS", raising=False)
    result = cli_runner.invoke(
        cli, ["serve", "--config", str(_config_file(tmp_path)), "--host", "0.0.0.0"]
    )
    assert result.exit_code == 2
    assert "without API keys" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: {}\n")
    result = cli_runner.invoke(cli, ["serve", "--config", str(bad)])
    assert result.exit_code == 2
    assert "invalid config" in result.output


async def test_sigterm_drains_before_uvicorn_shuts_down() -> None:
    """The first signal only starts the drain (admission closed, no exit yet); the server
    exits on the tick after the last query ends; a second signal exits at once."""
    app = create_app(make_config())
    state = app.state.system2
    config = uvicorn.Config(app, lifespan="off", log_config=None)
    config.load()
    server = DrainingServer(config, state)
    lease = await state.admission.admit(1.0)
    server.handle_exit(signal.SIGTERM, None)
    assert state.admission.draining
    assert not server.should_exit
    assert not await server.on_tick(0)
    lease.release()
    assert await server.on_tick(1)
    assert server.should_exit

    other = DrainingServer(config, create_app(make_config()).state.system2)
    other.handle_exit(signal.SIGTERM, None)
    other.handle_exit(signal.SIGTERM, None)
    assert other.should_exit


def test_worker_processes_build_the_app_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With --workers N each process builds the app from SYSTEM2_SERVE_CONFIG and the key
    file named by SYSTEM2_SERVE_API_KEY_FILE."""
    keys = tmp_path / "keys"
    keys.write_text("k1\n")
    monkeypatch.setenv(CONFIG_ENV, str(_config_file(tmp_path)))
    monkeypatch.setenv(KEY_FILE_ENV, str(keys))
    monkeypatch.delenv("SYSTEM2_API_KEYS", raising=False)
    state = app_from_env().state.system2
    assert sorted(state.served.profiles) == ["both", "greedy", "math-sc5", "rounds"]
    assert state.keys.accepts("k1")
    assert isinstance(state.keys, ApiKeys)
