"""Running the app on uvicorn: ``serve`` (what ``system2 serve`` calls).

SIGTERM (or Ctrl-C) first drains: ``/ready`` turns 503 and new requests get 503 while the
admitted queries finish (at most ``server.drain_timeout_s``); then uvicorn's graceful
shutdown closes the connections and the app's shutdown closes the workers. A second signal
exits at once. With ``--workers N`` each process loads its own models from the config, and
the drain is uvicorn's graceful shutdown plus the app's own (the listening socket closes
first, so ``/ready`` is not seen turning 503).
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from types import FrameType

import uvicorn
from fastapi import FastAPI

from system2.config import System2Config, load_config
from system2.logging import configure_logging
from system2.server.app import create_app
from system2.server.auth import ApiKeys, is_loopback
from system2.server.state import ServerState

__all__ = ["CONFIG_ENV", "KEY_FILE_ENV", "DrainingServer", "ServeError", "app_from_env", "serve"]

CONFIG_ENV = "SYSTEM2_SERVE_CONFIG"
KEY_FILE_ENV = "SYSTEM2_SERVE_API_KEY_FILE"


class ServeError(ValueError):
    """The server will not start as asked (e.g. open to the network without keys)."""


class DrainingServer(uvicorn.Server):
    """uvicorn's server, with a drain before its shutdown (see the module's docstring)."""

    def __init__(self, config: uvicorn.Config, state: ServerState) -> None:
        super().__init__(config)
        self._state = state
        self._drain_since: float | None = None
        self._signal = 0

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._drain_since is None and not self.should_exit:
            self._drain_since, self._signal = time.monotonic(), sig
            self._state.admission.begin_drain()
            return
        super().handle_exit(sig, frame)

    @property
    def drained(self) -> bool:
        """Whether the drain is over: every admitted query ended, or the time is up."""
        if self._drain_since is None:
            return False
        waited = time.monotonic() - self._drain_since
        return self._state.admission.idle or waited >= self._state.config.server.drain_timeout_s

    async def on_tick(self, counter: int) -> bool:
        if self.drained and not self.should_exit:
            super().handle_exit(self._signal, None)
        return await super().on_tick(counter)


def _open_without_keys(host: str, keys: ApiKeys, insecure_no_auth: bool) -> None:
    if not keys and not is_loopback(host) and not insecure_no_auth:
        raise ServeError(
            f"refusing to serve on {host} without API keys: set SYSTEM2_API_KEYS or "
            "--api-key-file, bind a loopback address, or pass --insecure-no-auth"
        )


def app_from_env() -> FastAPI:
    """The app for one of several worker processes (uvicorn ``factory``): the config and
    key file named by ``SYSTEM2_SERVE_CONFIG`` and ``SYSTEM2_SERVE_API_KEY_FILE``."""
    config = load_config(os.environ[CONFIG_ENV])
    configure_logging(config.logging.format, config.logging.level)
    key_file = os.environ.get(KEY_FILE_ENV)
    return create_app(config, api_keys=ApiKeys.load(Path(key_file) if key_file else None))


def serve(
    config_path: Path,
    *,
    host: str | None = None,
    port: int | None = None,
    workers: int = 1,
    api_key_file: Path | None = None,
    insecure_no_auth: bool = False,
) -> None:
    """Serve the config's profiles until SIGTERM/SIGINT (then drain and stop).

    Raises ``ConfigError`` for a bad config, ``ValueError`` (``ServeError``) for an
    unreadable key file or an open address without keys."""
    config: System2Config = load_config(config_path)
    configure_logging(config.logging.format, config.logging.level)
    keys = ApiKeys.load(api_key_file)
    host = host or config.server.host
    port = config.server.port if port is None else port
    _open_without_keys(host, keys, insecure_no_auth)
    graceful = max(1, math.ceil(config.server.drain_timeout_s))
    if workers > 1:
        os.environ[CONFIG_ENV] = str(Path(config_path).resolve())
        if api_key_file is not None:
            os.environ[KEY_FILE_ENV] = str(api_key_file.resolve())
        uvicorn.run(
            "system2.server.runner:app_from_env",
            factory=True,
            workers=workers,
            host=host,
            port=port,
            lifespan="on",
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=graceful,
        )
        return
    app = create_app(config, api_keys=keys)
    uconfig = uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="on",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=graceful,
    )
    DrainingServer(uconfig, app.state.system2).run()
