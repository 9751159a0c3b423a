"""Shared benchmark plumbing: print a rich table and write the same rows as JSON."""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from workers.base import Worker

__all__ = [
    "ENGINES",
    "RESULTS",
    "add_engine_options",
    "engine_fields",
    "engine_suffix",
    "load_worker",
    "machine_info",
    "report",
]

ENGINES = ("transformers", "vllm")

RESULTS = Path(__file__).parent / "results"


def machine_info() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def add_engine_options(parser: argparse.ArgumentParser) -> None:
    """``--engine`` (the embedded transformers model, or an in-process vLLM engine) and its
    settings."""
    parser.add_argument("--engine", choices=ENGINES, default="transformers")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (transformers)")
    parser.add_argument("--max-model-len", type=int, default=4096, help="vllm")
    parser.add_argument("--kv-cache-gib", type=float, default=4.0, help="vllm")


def load_worker(model: str, args: argparse.Namespace) -> Worker:
    """The worker for ``model`` on ``args.engine`` (see ``add_engine_options``)."""
    if args.engine == "vllm":
        from workers.vllm.worker import VLLMWorker

        return VLLMWorker.load(
            model,
            model_name=model,
            max_model_len=args.max_model_len,
            kv_cache_gib=args.kv_cache_gib,
        )
    from workers.transformers_worker import TransformersWorker

    return TransformersWorker.load(model, model_name=model, threads=args.threads)


def engine_suffix(args: argparse.Namespace) -> str:
    """What run-file names gain on another engine than transformers (whose names predate
    the option): the engines sample differently, so their runs must not mix."""
    return "" if args.engine == "transformers" else f"_{args.engine}"


def engine_fields(args: argparse.Namespace) -> dict[str, str]:
    """What run-file headers gain on another engine than transformers (for the same
    reason as ``engine_suffix``; transformers headers predate the option)."""
    return {} if args.engine == "transformers" else {"engine": args.engine}


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
    # Redirected to a log file, rich would squeeze the table into 80 columns.
    console = Console(width=None if sys.stdout.isatty() else 240)
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
