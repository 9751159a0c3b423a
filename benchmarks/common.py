"""Shared benchmark plumbing: print a rich table and write the same rows as JSON."""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

__all__ = ["RESULTS", "machine_info", "report"]

RESULTS = Path(__file__).parent / "results"


def machine_info() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def report(
    name: str,
    rows: Sequence[Mapping[str, Any]],
    *,
    summary: Mapping[str, Any] | None = None,
    title: str | None = None,
) -> Path:
    """Print ``rows`` as a table and write ``results/<name>.json``; returns the JSON path."""
    table = Table(title=title or name)
    columns = list(rows[0]) if rows else []
    for column in columns:
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(*(_fmt(row.get(c)) for c in columns))
    console = Console()
    console.print(table)
    for key, value in (summary or {}).items():
        console.print(f"{key}: {_fmt(value)}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {"benchmark": name, "machine": machine_info(), "rows": list(rows)}
    payload["summary"] = dict(summary or {})
    path.write_text(json.dumps(payload, indent=2) + "\n")
    console.print(f"wrote {path}")
    return path


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1 else f"{value:,.2f}"
    return str(value)
