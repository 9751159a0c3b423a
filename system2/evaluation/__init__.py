"""Evaluation harness: offline data sets, scoring, a sandbox for generated code, a
resumable runner and run comparison."""

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
    SandboxResult,
    SandboxStatus,
    build_humaneval_program,
    check_humaneval,
    network_isolated,
    run_python,
)

__all__ = [
    "HUMANEVAL",
    "NUMERIC_TASKS",
    "EvalItem",
    "ReportRow",
    "RunConfigMismatchError",
    "RunRecords",
    "RunSummary",
    "SandboxResult",
    "SandboxStatus",
    "ScoreOutcome",
    "available_datasets",
    "build_humaneval_program",
    "check_humaneval",
    "compare",
    "load_dataset",
    "load_run",
    "network_isolated",
    "plot_accuracy_vs_tokens",
    "print_report",
    "print_summary",
    "read_records",
    "run_eval",
    "run_python",
    "score_item",
    "summarize",
]
