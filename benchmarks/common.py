"""Shared benchmark plumbing: print a rich table and write the same rows as JSON.

Uncertainty travels with the numbers: a row value ``x`` with a ``x_ci`` entry (a 95%
interval, e.g. from ``accuracy_ci``) prints as ``x [low, high]``; ``Comparison`` rows (a
method against its baseline on the same items: fixed, broken, exact McNemar p) print as a
second table, marked "not significant" where they are, and go to the JSON's
``comparisons``. Per-item correctness comes from the run files (``item_correctness``).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from system2.evaluation import read_records
from system2.evaluation.stats import (
    PairedComparison,
    format_interval,
    paired_comparison,
    significance_label,
    wilson_interval,
)
from workers.base import Worker

__all__ = [
    "ENGINES",
    "RESULTS",
    "Comparison",
    "accuracy_ci",
    "add_engine_options",
    "engine_fields",
    "engine_suffix",
    "item_correctness",
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


def item_correctness(path: Path, reranker: str | None = None) -> dict[str, bool]:
    """Item id -> correct, from a run file; with ``reranker``, whether that reranker's pick
    passed (``record["rerankers"]``; an item without picks counts as wrong)."""
    _, records = read_records(path)
    if reranker is None:
        return {key: bool(r["correct"]) for key, r in records.items()}
    return {key: bool((r.get("rerankers") or {}).get(reranker)) for key, r in records.items()}


def accuracy_ci(correct: Mapping[str, bool]) -> list[float]:
    """The 95% Wilson interval of the accuracy over ``correct`` (item id -> correct)."""
    return list(wilson_interval(sum(correct.values()), len(correct)))


@dataclass(frozen=True)
class Comparison:
    """``method`` against ``baseline`` on the same items (``label``: e.g. the data set)."""

    label: str
    baseline: str
    method: str
    result: PairedComparison

    @classmethod
    def of(
        cls,
        label: str,
        baseline: tuple[str, Mapping[str, bool]],
        method: tuple[str, Mapping[str, bool]],
    ) -> Comparison:
        """Pair two (name, item id -> correct) runs."""
        return cls(label, baseline[0], method[0], paired_comparison(baseline[1], method[1]))

    def as_row(self) -> dict[str, Any]:
        """The comparison as the JSON keeps it."""
        return {"label": self.label, "baseline": self.baseline, "method": self.method,
                **self.result.as_dict()}  # fmt: skip


def _comparison_table(comparisons: Sequence[Comparison]) -> Table:
    table = Table(title="against the baseline, same items (exact McNemar test)")
    for column in ("", "baseline", "method", "items", "baseline acc.", "method acc."):
        table.add_column(column, justify="right")
    for column in ("fixed", "broken", "p", "verdict"):
        table.add_column(column, justify="right")
    for c in comparisons:
        r = c.result
        table.add_row(
            c.label,
            c.baseline,
            c.method,
            str(r.n) + (f" ({r.excluded} unshared)" if r.excluded else ""),
            f"{r.accuracy_a:.1%} {format_interval(*r.interval_a)}",
            f"{r.accuracy_b:.1%} {format_interval(*r.interval_b)}",
            str(r.fixed),
            str(r.broken),
            f"{r.p_value:.3g}",
            significance_label(r.p_value),
        )
    return table


def report(
    name: str,
    rows: Sequence[Mapping[str, Any]],
    *,
    summary: Mapping[str, Any] | None = None,
    title: str | None = None,
    results: Path = RESULTS,
    comparisons: Sequence[Comparison] = (),
    machine: Mapping[str, Any] | None = None,
) -> Path:
    """Print ``rows`` (and ``comparisons``) as tables and write ``<results>/<name>.json``
    (``results/`` by default); returns the JSON path. ``machine``: where the numbers were
    measured, when the tables are rebuilt from stored runs (default: this machine)."""
    table = Table(title=title or name)
    columns = [c for c in (rows[0] if rows else {}) if not _is_interval_of(c, rows[0])]
    for column in columns:
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(*(_cell(row, c) for c in columns))
    # Redirected to a log file, rich would squeeze the table into 80 columns.
    console = Console(width=None if sys.stdout.isatty() else 240)
    console.print(table)
    if comparisons:
        console.print(_comparison_table(comparisons))
    for key, value in (summary or {}).items():
        console.print(f"{key}: {_fmt(value)}")
    results.mkdir(parents=True, exist_ok=True)
    path = results / f"{name}.json"
    payload = {"benchmark": name, "machine": dict(machine or machine_info()), "rows": list(rows)}
    payload["summary"] = dict(summary or {})
    payload["comparisons"] = [c.as_row() for c in comparisons]
    path.write_text(json.dumps(payload, indent=2) + "\n")
    console.print(f"wrote {path}")
    return path


def _is_interval_of(column: str, row: Mapping[str, Any]) -> bool:
    return column.endswith("_ci") and column.removesuffix("_ci") in row


def _cell(row: Mapping[str, Any], column: str) -> str:
    interval = row.get(f"{column}_ci")
    if interval is not None and isinstance(row.get(column), float):
        return f"{row[column]:.1%} {format_interval(*interval)}"
    return _fmt(row.get(column))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1 else f"{value:,.2f}"
    return str(value)
