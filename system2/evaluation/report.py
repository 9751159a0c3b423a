"""Compare finished runs: a table, and accuracy against generated tokens as a plot."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import structlog
from rich.console import Console
from rich.table import Table

from .runner import read_records

__all__ = [
    "ReportRow",
    "RunRecords",
    "compare",
    "load_run",
    "plot_accuracy_vs_tokens",
    "print_report",
]

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class RunRecords:
    """One run file: its header (the run_config) and its item records, last per id."""

    path: Path
    header: dict[str, Any]
    items: list[dict[str, Any]]

    @property
    def name(self) -> str:
        """The header's ``name`` when the run_config has one, else the file stem."""
        name = self.header.get("name")
        return str(name) if name else self.path.stem


@dataclass(frozen=True)
class ReportRow:
    """One run, reduced to what the comparison shows. Means are per item, failures
    included (a failed item counts as wrong, with the tokens it reported)."""

    name: str
    n: int
    accuracy: float
    mean_completion_tokens: float
    mean_seconds: float
    failures: int
    path: str


def load_run(path: Path | str) -> RunRecords:
    """Read a run file written by ``run_eval``."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(path)
    header, records = read_records(path)
    if header is None:
        raise ValueError(f"{path} has no header line; not a run file")
    return RunRecords(path=path, header=header, items=list(records.values()))


def compare(runs: Sequence[RunRecords]) -> list[ReportRow]:
    """One row per run, in the order given."""
    rows = []
    for run in runs:
        n = len(run.items)
        correct = sum(1 for r in run.items if r["correct"])
        tokens = sum(int(r["completion_tokens"]) for r in run.items)
        seconds = sum(float(r["seconds"]) for r in run.items)
        rows.append(
            ReportRow(
                name=run.name,
                n=n,
                accuracy=correct / n if n else 0.0,
                mean_completion_tokens=tokens / n if n else 0.0,
                mean_seconds=seconds / n if n else 0.0,
                failures=sum(1 for r in run.items if r["status"] == "failed"),
                path=str(run.path),
            )
        )
    return rows


def print_report(rows: Sequence[ReportRow], *, console: Console | None = None) -> None:
    """Print the rows as a rich table."""
    table = Table(title="runs")
    table.add_column("run", style="bold")
    for column in ("n", "accuracy", "mean gen. tokens", "mean seconds", "failures"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(
            row.name,
            str(row.n),
            f"{row.accuracy:.1%}",
            f"{row.mean_completion_tokens:.1f}",
            f"{row.mean_seconds:.2f}",
            str(row.failures),
        )
    (console or Console()).print(table)


def plot_accuracy_vs_tokens(
    rows: Sequence[ReportRow],
    png_path: Path | str,
    *,
    log_x: bool = False,
    title: str = "accuracy vs generated tokens",
) -> Path:
    """Plot one labelled point per run (x: mean generated tokens per item, y: accuracy)
    to ``png_path`` and write the rows as JSON beside it; returns the JSON path."""
    # The object-oriented API with an explicit Agg canvas: no pyplot, no global backend.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    png_path = Path(png_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    xs = [row.mean_completion_tokens for row in rows]
    ys = [row.accuracy for row in rows]
    ax.scatter(xs, ys, zorder=3)
    for row, x, y in zip(rows, xs, ys, strict=True):
        ax.annotate(row.name, (x, y), xytext=(4, 4), textcoords="offset points", fontsize=8)
    if log_x and xs and all(x > 0 for x in xs):
        ax.set_xscale("log")
    elif log_x:
        log.warning("eval.report.linear_x", reason="a run has no generated tokens")
    ax.set_xlabel("mean generated tokens per item")
    ax.set_ylabel("accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(True, alpha=0.3)
    ax.set_title(title)
    fig.savefig(png_path, dpi=120)

    json_path = png_path.with_suffix(".json")
    json_path.write_text(json.dumps([asdict(row) for row in rows], indent=2) + "\n")
    log.info("eval.report.plot", png=str(png_path), json=str(json_path), runs=len(rows))
    return json_path
