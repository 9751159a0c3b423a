"""``system2 graph``: draw and export the reasoning graph a ``metastable`` query built."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from system2.cli.output import console, fail

__all__ = ["graph"]


def graph(
    run: Annotated[Path, typer.Argument(help="run file written by system2 eval")],
    item: Annotated[str, typer.Option("--item", help="the item id whose graph to draw")],
    out: Annotated[Path, typer.Option(help="PNG to draw")] = Path("graph.png"),
    json_out: Annotated[
        Path | None, typer.Option("--json", help="also write the graph as JSON")
    ] = None,
    graphml: Annotated[Path | None, typer.Option(help="also write GraphML")] = None,
    preferences: Annotated[
        Path | None, typer.Option(help="write sparse-edge preference pairs (JSONL)")
    ] = None,
) -> None:
    """Draw one query's reasoning graph (clusters coloured, sparse edges dashed red) and
    print its cluster meta-chain; optionally export JSON, GraphML and preference pairs."""
    from orchestrator.graph import (
        draw_png,
        from_json,
        meta_chain,
        preference_records,
        write_graphml,
        write_json,
        write_preferences,
    )
    from system2.evaluation import read_records

    try:
        _, records = read_records(run)
    except (OSError, ValueError) as exc:
        raise fail(f"cannot read {run}: {exc}") from None
    record = records.get(item)
    if record is None:
        known = ", ".join(sorted(records)[:5])
        raise fail(f"{run}: no item {item!r} (items include {known})")
    data = ((record.get("trace") or {}).get("extra") or {}).get("graph")
    if data is None:
        raise fail(f"{run}: item {item!r} has no graph (was it run with kind: metastable?)")
    reasoning = from_json(json.dumps(data))
    draw_png(reasoning, out, title=f"{item}: {len(reasoning)} nodes")
    console.print(f"graph drawn to {out}")
    if json_out:
        write_json(reasoning, json_out)
    if graphml:
        write_graphml(reasoning, graphml)
    if preferences:
        pairs = preference_records(reasoning)
        write_preferences(pairs, preferences)
        console.print(f"{len(pairs)} preference pairs written to {preferences}")
    if reasoning.clustered:
        _print_meta_chain(meta_chain(reasoning).probs, len(reasoning.sparse_edges()))


def _print_meta_chain(probs: tuple[tuple[float, ...], ...], sparse: int) -> None:
    table = Table(title=f"cluster meta-chain ({sparse} sparse edges)")
    table.add_column("from \\ to")
    for j in range(len(probs)):
        table.add_column(f"c{j}", justify="right")
    for i, row in enumerate(probs):
        table.add_row(f"c{i}", *(f"{p:.2f}" for p in row))
    console.print(table)
