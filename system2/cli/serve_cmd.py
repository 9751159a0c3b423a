"""``system2 serve``: the OpenAI-compatible server over a config's profiles.

The server's packages (fastapi, uvicorn, ...) are the optional ``server`` extra, imported
only when the command runs, so the rest of the CLI works without them. ``--ray`` serves
the same app as a Ray Serve ingress (``system2.ray.serve_app``; the ``ray`` extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from system2.cli.output import fail
from system2.config import ConfigError
from workers.errors import CatalogError

__all__ = ["serve"]


def serve(
    config: Annotated[Path, typer.Option("--config", "-c", help="YAML config with profiles")],
    host: Annotated[
        str | None, typer.Option(help="address to bind (default: server.host, 127.0.0.1)")
    ] = None,
    port: Annotated[
        int | None, typer.Option(min=0, max=65535, help="port (default: server.port, 8000)")
    ] = None,
    workers: Annotated[int, typer.Option(min=1, help="processes, each loading its own models")] = 1,
    api_key_file: Annotated[
        Path | None,
        typer.Option(help="file of API keys, one a line (also: SYSTEM2_API_KEYS=k1,k2)"),
    ] = None,
    insecure_no_auth: Annotated[
        bool,
        typer.Option("--insecure-no-auth", help="allow a non-loopback address without API keys"),
    ] = False,
    on_ray: Annotated[
        bool, typer.Option("--ray", help="serve from Ray Serve (an ingress over the models)")
    ] = False,
    address: Annotated[
        str | None,
        typer.Option(help="with --ray: cluster to join (auto, HOST:PORT; default: ray.address)"),
    ] = None,
    ray_replicas: Annotated[
        int, typer.Option(min=1, help="with --ray: ingress replicas (instead of --workers)")
    ] = 1,
) -> None:
    """Serve the config's profiles as OpenAI models (POST /v1/chat/completions)."""
    if on_ray:
        _serve_on_ray(config, host, port, ray_replicas, api_key_file, insecure_no_auth, address)
        return
    try:
        from system2.server.runner import serve as run_server
    except ImportError as exc:
        raise fail(f"{exc}: install the server extra (pip install 'system2[server]')") from None
    try:
        run_server(
            config,
            host=host,
            port=port,
            workers=workers,
            api_key_file=api_key_file,
            insecure_no_auth=insecure_no_auth,
        )
    except (ConfigError, CatalogError, ValueError) as exc:
        raise fail(exc) from None


def _serve_on_ray(
    config: Path,
    host: str | None,
    port: int | None,
    replicas: int,
    api_key_file: Path | None,
    insecure_no_auth: bool,
    address: str | None,
) -> None:
    try:
        from system2.ray.serve_app import serve_on_ray  # imports ray and the server extra
    except ImportError as exc:
        raise fail(
            f"{exc}: install the ray and server extras (pip install 'system2[ray,server]')"
        ) from None
    try:
        serve_on_ray(
            config,
            host=host,
            port=port,
            replicas=replicas,
            api_key_file=api_key_file,
            insecure_no_auth=insecure_no_auth,
            address=address,
        )
    except (ConfigError, CatalogError, ValueError) as exc:
        raise fail(exc) from None
