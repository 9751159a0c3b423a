"""``system2 serve``: the OpenAI-compatible server over a config's profiles.

The server's packages (fastapi, uvicorn, ...) are the optional ``server`` extra, imported
only when the command runs, so the rest of the CLI works without them."""

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
) -> None:
    """Serve the config's profiles as OpenAI models (POST /v1/chat/completions)."""
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
