"""The guided comparison as a table and a JSON summary: each mode's accuracy with its 95%
Wilson interval, and each guided or re-voted mode against its unguided baseline
(``guided.BASELINES``) on the same items: items fixed and broken, the exact McNemar p
(``stats.paired_comparison``) and whether it is significant at p < 0.05.

Modes are compared on the item ids both have; any item only one of them has is named
(``ModeTest.missing``), printed under the table and kept in the summary, never silently
dropped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console, JustifyMethod
from rich.measure import Measurement
from rich.table import Table

from system2.evaluation.guided import BASELINES, ModeResult
from system2.evaluation.stats import (
    PairedComparison,
    format_interval,
    paired_comparison,
    significance_label,
    wilson_interval,
)

__all__ = ["ModeTest", "order_results", "paired_tests", "print_guided", "write_summary"]


@dataclass(frozen=True)
class ModeTest:
    """A mode against its ``baseline`` mode: the paired comparison on their shared items,
    and the ids of the items only one of them has (``missing``: mode lacks / baseline lacks)."""

    baseline: str
    comparison: PairedComparison
    missing_in_mode: tuple[str, ...]
    missing_in_baseline: tuple[str, ...]

    @property
    def complete(self) -> bool:
        """Whether both modes have exactly the same items."""
        return not self.missing_in_mode and not self.missing_in_baseline

    def as_dict(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline,
            **self.comparison.as_dict(),
            "missing_in_mode": list(self.missing_in_mode),
            "missing_in_baseline": list(self.missing_in_baseline),
        }


def paired_tests(results: Sequence[ModeResult]) -> dict[str, ModeTest]:
    """Each guided or re-voted mode (by name) against its baseline among ``results``;
    modes whose baseline did not run are left out."""
    by_name = {r.mode: r for r in results}
    tests = {}
    for r in results:
        baseline = by_name.get(BASELINES.get(r.base_mode, ""))
        if baseline is None:
            continue
        a, b = baseline.correct, r.correct
        tests[r.mode] = ModeTest(
            baseline.mode,
            paired_comparison(a, b),
            tuple(i for i in a if i not in b),
            tuple(i for i in b if i not in a),
        )
    return tests


def order_results(results: Sequence[ModeResult]) -> list[ModeResult]:
    """Greedy and its guided modes first, then SC and its guided and re-voted modes; the
    unguided mode first in each, run order after it."""
    return sorted(results, key=lambda r: _table_place(r.mode, r.base_mode))


def _table_place(mode: str, base_mode: str) -> tuple[int, int]:
    """Greedy's family before SC's; in each, the unguided mode first."""
    return (0 if "greedy" in base_mode else 1, 0 if mode in ("greedy", "sc") else 1)


def _row(r: ModeResult, test: ModeTest | None) -> dict[str, Any]:
    low, high = wilson_interval(r.summary.correct, r.summary.n)
    return {
        "mode": r.mode,
        "base_mode": r.base_mode,
        "verifier": None if r.verifier is None else r.verifier.describe(),
        "file": str(r.path),
        "items": r.summary.n,
        "correct": r.summary.correct,
        "accuracy": r.summary.accuracy,
        "interval": [low, high],
        "completion_tokens_mean": r.summary.completion_tokens_mean,
        "completion_tokens_total": r.summary.completion_tokens_total,
        "seconds_total": r.summary.seconds_total,
        "wall_seconds": r.wall_seconds,
        "verifier_seconds": r.verifier_seconds,
        "verifier_share": r.verifier_share,
        "failures": r.summary.failures,
        "paired": None if test is None else test.as_dict(),
    }


_TIMINGS = ("wall_seconds", "verifier_seconds", "verifier_share")


def write_summary(path: Path | str, results: Sequence[ModeResult]) -> list[dict[str, Any]]:
    """Write the summary (a row per mode, in table order) as JSON; returns the rows.

    An existing summary is merged into, not overwritten: rows of modes that did not run in
    this call stay, and a mode that ran no item in this call (all resumed, or read back as
    a baseline) keeps the timings recorded when its items ran, if its items and counts are
    unchanged."""
    tests = paired_tests(results)
    rows = [_row(r, tests.get(r.mode)) for r in order_results(results)]
    target = Path(path)
    earlier = json.loads(target.read_text()) if target.exists() else []
    by_mode = {row["mode"]: row for row in earlier}
    for row in rows:
        old = by_mode.get(row["mode"])
        if old is None or row["wall_seconds"] is not None:
            continue
        if all(old[k] == row[k] for k in ("items", "correct", "file")):
            row.update({k: old[k] for k in _TIMINGS})
    ran = {row["mode"]: row for row in rows}
    kept = [ran.pop(row["mode"], row) for row in earlier]  # earlier rows keep their place
    rows = kept + list(ran.values())
    rows.sort(key=lambda row: _table_place(row["mode"], row["base_mode"]))
    target.write_text(json.dumps(rows, indent=2) + "\n")
    return rows


def _verifier_cell(r: ModeResult) -> str:
    if r.verifier is None:
        return "-"
    return f"{r.verifier.kind}, {r.verifier.source or 'source not recorded'}"


def _optional(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_guided(
    results: Sequence[ModeResult],
    *,
    console: Console | None = None,
    tests: Mapping[str, ModeTest] | None = None,
) -> None:
    """The comparison as one table (a row per mode), then a line per mode whose items
    differ from its baseline's. On a terminal narrower than the table the cells fold;
    into a file or pipe the table is printed at its full width."""
    tests = paired_tests(results) if tests is None else tests
    table = Table(title="System-1 vs System-2 (same items; paired exact McNemar tests)")
    longest = max((len(r.mode) for r in results), default=4)
    table.add_column("mode", style="bold", no_wrap=True, min_width=longest)
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("verifier (kind, triplets)", "left"),
        ("items", "right"),
        ("accuracy [95%]", "right"),
        ("vs", "left"),
        ("fixed / broken", "right"),
        ("exact p", "right"),
        ("", "left"),
        ("tokens", "right"),
        ("wall s", "right"),
        ("verifier s (share)", "right"),
    )
    for column, justify in columns:
        table.add_column(column, justify=justify, overflow="fold")
    for r in order_results(results):
        test = tests.get(r.mode)
        c = test.comparison if test else None
        share = "" if r.verifier_share is None else f" ({r.verifier_share:.0%})"
        table.add_row(
            r.mode,
            _verifier_cell(r),
            str(r.summary.n),
            f"{r.summary.accuracy:.1%} "
            + format_interval(*wilson_interval(r.summary.correct, r.summary.n)),
            test.baseline if test else "",
            f"+{c.fixed} / -{c.broken}" if c else "",
            f"{c.p_value:.3g}" if c else "",
            significance_label(c.p_value) if c else "",
            f"{r.summary.completion_tokens_mean:.1f}",
            _optional(r.wall_seconds, ".1f"),
            _optional(r.verifier_seconds, ".1f") + share,
        )
    out = console or Console()
    # A log file is no terminal to fold for: there the table keeps its natural width.
    natural = Measurement.get(out, out.options.update_width(10_000), table).maximum
    if out.is_terminal or natural <= out.width:
        out.print(table)
    else:
        Console(file=out.file, width=natural, no_color=out.no_color).print(table)
    for mode, test in tests.items():
        if not test.complete:
            out.print(
                f"[yellow]warning:[/yellow] {mode} vs {test.baseline} compares "
                f"{test.comparison.n} shared items; missing in {mode}: "
                f"{', '.join(test.missing_in_mode) or 'none'}; missing in {test.baseline}: "
                f"{', '.join(test.missing_in_baseline) or 'none'}",
                highlight=False,
            )
