"""``system2 verifier triplets-from-runs`` and ``synthesize --source paths``: training
triplets without rollouts, from the candidates that evaluation runs already sampled
(``system2.pipelines.verifier_triplets.from_paths_runs``), and the totals table both
triplet sources print. Registered on ``verifier_cmd``'s app.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from system2.cli.output import console, fail

if TYPE_CHECKING:
    from system2.pipelines.verifier_triplets import SynthesisStats

__all__ = ["path_triplets", "paths_triplets", "print_stats"]


def print_stats(stats: SynthesisStats, title: str) -> None:
    """A triplets file's totals as a two-column table."""
    table = Table(title=title, show_header=False)
    for key, value in vars(stats).items():
        table.add_row(
            key.replace("_", " "), f"{value:,.1f}" if isinstance(value, float) else f"{value:,}"
        )
    console.print(table)


def path_triplets(
    runs: Sequence[Path],
    out: Path,
    *,
    model: str | None,
    margin: float,
    max_per_item: int,
    allow_mixed: bool,
) -> None:
    """Write path triplets of ``runs`` into ``out`` (resumable) and print the totals; a
    bad run file, model or ``out`` fails the command with the reason."""
    from system2.pipelines.verifier_triplets.from_paths import PathSettings
    from system2.pipelines.verifier_triplets.from_paths_runs import triplets_from_runs

    if not runs:
        raise fail("path triplets need run files (--runs RUN.jsonl, repeatable)")
    try:
        settings = PathSettings(margin=margin, max_per_item=max_per_item)
        stats = asyncio.run(
            triplets_from_runs(
                runs, out, model=model, settings=settings, allow_mixed=allow_mixed, console=console
            )
        )
    except (OSError, ValueError) as exc:
        raise fail(exc) from None
    print_stats(stats, f"path triplets: {out.name}")


def paths_triplets(
    runs: Annotated[
        list[Path], typer.Argument(help="run files of `system2 eval` with per-candidate texts")
    ],
    out: Annotated[Path, typer.Option(help="triplets file (JSONL); rerun to resume")],
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="generator whose tokenizer to use (default: the runs')"),
    ] = None,
    margin: Annotated[
        float, typer.Option(help="a triplet needs branch accuracies apart by >= margin")
    ] = 0.5,
    max_per_item: Annotated[
        int, typer.Option(min=0, help="triplets kept per question (0: no cap)")
    ] = 8,
    allow_mixed: Annotated[
        bool, typer.Option(help="resume a triplets file written by another version or revision")
    ] = False,
) -> None:
    """Triplets without rollouts: where a right and a wrong sampled path of one question
    part, the tokens they took there (no generation: the runs' samples are reused). The
    same as `verifier synthesize --source paths --runs ...`."""
    path_triplets(
        runs, out, model=model, margin=margin, max_per_item=max_per_item, allow_mixed=allow_mixed
    )
