"""``system2 serve --ray``: the OpenAI-compatible app as a Ray Serve ingress.

The driver joins the config's cluster, starts Serve's HTTP proxy on the head node at the
server's ``host:port``, deploys the config's ``ray`` models (one Serve application each),
then the ingress application ``system2`` (``replicas`` replicas of ``System2Ingress``).
Each ingress replica builds the very app of ``system2 serve`` (``create_app``) over
workers that hold handles to the model applications (models of other kinds are loaded in
each ingress replica), with its own admission limits. SIGTERM or Ctrl-C deletes the
ingress (Serve lets in-flight requests finish, up to ``server.drain_timeout_s``, then the
app's shutdown drains and closes its workers) and the model applications.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from ray import serve

from system2.assembly import build_worker, build_workers
from system2.config import System2Config, load_config
from system2.logging import configure_logging
from system2.ray.cluster import connect, start_serve
from system2.ray.config import RayWorkerConfig
from system2.server.app import create_app
from system2.server.auth import ApiKeys, is_loopback
from system2.server.runner import ServeError
from workers.base import Worker

__all__ = ["INGRESS_APP", "System2Ingress", "deploy_server", "serve_on_ray"]

INGRESS_APP = "system2"
"""The Serve application of the ingress (routes at ``/``)."""


@serve.ingress()
class System2Ingress:
    """One ingress replica: ``create_app`` over handles to the deployed models."""

    def __init__(self, config: System2Config, api_keys: ApiKeys) -> None:
        self._config = config
        self._keys = api_keys

    async def __serve_build_asgi_app__(self) -> FastAPI:
        workers = await asyncio.to_thread(build_workers, self._config, deploy=False)
        return create_app(self._config, workers=workers, api_keys=self._keys)


def deploy_server(
    config: System2Config, api_keys: ApiKeys, *, host: str, port: int, replicas: int = 1
) -> dict[str, Worker]:
    """Deploy the models and the ingress on the config's cluster (see the module's
    docstring); the model workers (close them to delete their applications)."""
    connect(config.ray)
    start_serve(host=host, port=port)
    models = {
        name: build_worker(name, model, cluster=config.ray)
        for name, model in config.models.items()
        if isinstance(model, RayWorkerConfig)
    }
    ingress = serve.deployment(name="System2Ingress")(System2Ingress).options(
        num_replicas=replicas,
        ray_actor_options={"num_cpus": 0},
        max_ongoing_requests=config.server.max_running + config.server.max_waiting,
        graceful_shutdown_timeout_s=config.server.drain_timeout_s,
        logging_config={"enable_access_log": False, "log_level": "WARNING"},
    )
    serve.run(ingress.bind(config, api_keys), name=INGRESS_APP, route_prefix="/")
    return models


def serve_on_ray(
    config_path: Path,
    *,
    host: str | None = None,
    port: int | None = None,
    replicas: int = 1,
    api_key_file: Path | None = None,
    insecure_no_auth: bool = False,
    address: str | None = None,
) -> None:
    """Serve the config's profiles from Ray Serve until SIGTERM/SIGINT (see the module's
    docstring). Raises ``ConfigError`` for a bad config, ``ValueError`` (``ServeError``)
    for an unreadable key file or an open address without keys."""
    config = load_config(config_path)
    if address is not None:
        config = config.model_copy(
            update={"ray": config.ray.model_copy(update={"address": address})}
        )
    configure_logging(config.logging.format, config.logging.level)
    keys = ApiKeys.load(api_key_file)
    host = host or config.server.host
    port = config.server.port if port is None else port
    if not keys and not is_loopback(host) and not insecure_no_auth:
        raise ServeError(
            f"refusing to serve on {host} without API keys: set SYSTEM2_API_KEYS or "
            "--api-key-file, bind a loopback address, or pass --insecure-no-auth"
        )
    connect(config.ray)  # first: joining installs Ray's own signal handlers
    stop = threading.Event()
    with _stopped_by_signals(stop):
        models = deploy_server(config, keys, host=host, port=port, replicas=replicas)
        try:
            while not stop.wait(1.0):
                pass
        finally:
            serve.delete(INGRESS_APP)
            asyncio.run(_close(models))


@contextmanager
def _stopped_by_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set ``stop`` while inside."""

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


async def _close(workers: dict[str, Worker]) -> None:
    await asyncio.gather(*(w.close() for w in workers.values()))
