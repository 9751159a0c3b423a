"""Compare finished runs: a table, and accuracy against generated tokens as a plot.

Every accuracy comes with its 95% Wilson interval. Runs after the first are compared with
the first (the baseline) item by item on the items both have: items fixed and broken and
the exact McNemar p (``system2.evaluation.stats``), a difference with p >= 0.05 marked
"not significant". Each run also says how many of its votes were ties and how they were
broken (``system2.evaluation.vote_ties``).
"""

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
from .stats import PairedComparison, format_interval, paired_comparison, wilson_interval
from .vote_ties import VoteTies, count_ties

__all__ = [
    "ReportRow",
    "RunRecords",
    "compare",
    "correctness",
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
    included (a failed item counts as wrong, with the tokens it reported).

    ``interval``: the accuracy's 95% Wilson interval. ``vs_baseline``: this run against the
    first run on their shared items (None for the first run itself).
    """

    name: str
    n: int
    accuracy: float
    mean_completion_tokens: float
    mean_seconds: float
    failures: int
    path: str
    correct: int
    interval: tuple[float, float]
    ties: VoteTies
    baseline: str | None = None
    vs_baseline: PairedComparison | None = None

    def as_dict(self) -> dict[str, Any]:
        """The row as JSON-ready data, the paired comparison's fields included."""
        data = asdict(self)
        data["interval"] = list(self.interval)
        data["vs_baseline"] = None if self.vs_baseline is None else self.vs_baseline.as_dict()
        return data


def load_run(path: Path | str) -> RunRecords:
    """Read a run file written by ``run_eval``."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(path)
    header, records = read_records(path)
    if header is None:
        raise ValueError(f"{path} has no header line; not a run file")
    return RunRecords(path=path, header=header, items=list(records.values()))


def correctness(run: RunRecords) -> dict[str, bool]:
    """Item id -> correct (a failed item is wrong), for paired comparisons."""
    return {str(r["id"]): bool(r["correct"]) for r in run.items}


def compare(runs: Sequence[RunRecords]) -> list[ReportRow]:
    """One row per run, in the order given; every run after the first is compared with
    the first, item by item."""
    rows = []
    baseline = correctness(runs[0]) if runs else {}
    for index, run in enumerate(runs):
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
                correct=correct,
                interval=wilson_interval(correct, n),
                ties=count_ties(run.items),
                baseline=runs[0].name if index else None,
                vs_baseline=paired_comparison(baseline, correctness(run)) if index else None,
            )
        )
    return rows


def _paired_table(rows: Sequence[ReportRow]) -> Table | None:
    paired = [(row, row.vs_baseline) for row in rows if row.vs_baseline is not None]
    if not paired:
        return None
    table = Table(title=f"paired against {rows[0].name} (same items, exact McNemar test)")
    table.add_column("run", style="bold")
    for column in ("shared", "baseline", "run", "difference", "fixed", "broken", "p", "verdict"):
        table.add_column(column, justify="right")
    for row, c in paired:
        table.add_row(
            row.name + (f" ({c.excluded} unshared)" if c.excluded else ""),
            str(c.n),
            f"{c.accuracy_a:.1%}",
            f"{c.accuracy_b:.1%}",
            f"{c.difference:+.1%}",
            str(c.fixed),
            str(c.broken),
            f"{c.p_value:.3g}",
            "significant" if c.significant else "not significant",
        )
    return table


def print_report(rows: Sequence[ReportRow], *, console: Console | None = None) -> None:
    """Print the rows as a rich table (accuracy with its 95% interval, vote ties), then
    each later run paired against the first."""
    console = console or Console()
    table = Table(title="runs")
    table.add_column("run", style="bold")
    columns = ("n", "accuracy", "95% interval", "mean gen. tokens", "mean seconds", "failures")
    for column in (*columns, "vote ties"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(
            row.name,
            str(row.n),
            f"{row.accuracy:.1%}",
            format_interval(*row.interval),
            f"{row.mean_completion_tokens:.1f}",
            f"{row.mean_seconds:.2f}",
            str(row.failures),
            row.ties.describe(),
        )
    console.print(table)
    paired = _paired_table(rows)
    if paired is not None:
        console.print(paired)


def plot_accuracy_vs_tokens(
    rows: Sequence[ReportRow],
    png_path: Path | str,
    *,
    log_x: bool = False,
    title: str = "accuracy vs generated tokens",
) -> Path:
    """Plot one labelled point per run (x: mean generated tokens per item, y: accuracy,
    with its 95% interval as an error bar) to ``png_path`` and write the rows as JSON beside
    it; returns the JSON path."""
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
    below = [row.accuracy - row.interval[0] for row in rows]
    above = [row.interval[1] - row.accuracy for row in rows]
    ax.errorbar(xs, ys, yerr=[below, above], fmt="o", capsize=3, zorder=3)
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
    json_path.write_text(json.dumps([row.as_dict() for row in rows], indent=2) + "\n")
    log.info("eval.report.plot", png=str(png_path), json=str(json_path), runs=len(rows))
    return json_path
