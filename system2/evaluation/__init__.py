"""Evaluation harness: offline data sets, scoring, a sandbox for generated code, a
resumable runner and run comparison with its uncertainty (intervals, paired tests)."""

from __future__ import annotations

from .datasets import (
    HUMANEVAL,
    NUMERIC_TASKS,
    EvalItem,
    ScoreOutcome,
    available_datasets,
    load_dataset,
    score_item,
)
from .report import (
    ReportRow,
    RunRecords,
    compare,
    load_run,
    plot_accuracy_vs_tokens,
    print_report,
)
from .runner import (
    RunConfigMismatchError,
    RunSummary,
    print_summary,
    read_records,
    run_eval,
    summarize,
)
from .sandbox import (
    CheckStatus,
    ProgramResult,
    SandboxResult,
    check_humaneval,
    containment,
    run_python,
)
from .stats import PairedComparison, paired_comparison, wilson_interval
from .vote_ties import VoteTies, count_ties

__all__ = [
    "HUMANEVAL",
    "NUMERIC_TASKS",
    "CheckStatus",
    "EvalItem",
    "PairedComparison",
    "ProgramResult",
    "ReportRow",
    "RunConfigMismatchError",
    "RunRecords",
    "RunSummary",
    "SandboxResult",
    "ScoreOutcome",
    "VoteTies",
    "available_datasets",
    "check_humaneval",
    "compare",
    "containment",
    "count_ties",
    "load_dataset",
    "load_run",
    "paired_comparison",
    "plot_accuracy_vs_tokens",
    "print_report",
    "print_summary",
    "read_records",
    "run_eval",
    "run_python",
    "score_item",
    "summarize",
    "wilson_interval",
]
