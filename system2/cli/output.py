"""The CLI's two consoles and its one way to stop on bad input (exit code 2)."""

from __future__ import annotations

import typer
from rich.console import Console

__all__ = ["console", "err", "fail"]

console = Console()
err = Console(stderr=True)


def fail(message: object) -> typer.Exit:
    """Print ``error: message`` on stderr; raise the returned ``typer.Exit`` (code 2)."""
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(2)
