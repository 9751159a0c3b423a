"""``system2 router``: collect SelectLLM labels and train the query router, over models
(SelectLLM) or over arms, (model, strategy) pairs (the ``compute_aware`` policy)."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from system2.cli.config_file import load_cli_config
from system2.cli.output import console, fail
from workers.errors import CatalogError

if TYPE_CHECKING:
    from policies.selectllm.labels import LabelStats
    from policies.selectllm.train import RouterMetrics

__all__ = ["app"]

app = typer.Typer(
    help="SelectLLM's query router: collect per-model labels, then train it.",
    no_args_is_help=True,
)


@app.command()
def collect(
    datasets: Annotated[
        list[str], typer.Argument(help="one or more data sets (mixed into one label set)")
    ],
    config: Annotated[Path, typer.Option("--config", "-c", help="YAML config: its models")],
    out: Annotated[Path, typer.Option(help="labels file (JSONL); rerun to resume")],
    limit: Annotated[int, typer.Option(min=1, help="items per data set")] = 100,
    seed: Annotated[int, typer.Option(help="seed that generates / selects the items")] = 0,
    samples: Annotated[int, typer.Option(min=1, help="samples per (item, model)")] = 10,
    temperature: Annotated[float, typer.Option(min=0.0, help="sampling temperature")] = 0.7,
    max_tokens: Annotated[int, typer.Option(min=1, help="tokens per sample")] = 512,
    sample_seed: Annotated[int, typer.Option(help="seed of the samples")] = 0,
    greedy: Annotated[
        bool, typer.Option(help="also a greedy answer per pair (for greedy arms)")
    ] = False,
    retry_failed: Annotated[bool, typer.Option(help="rerun pairs recorded as failed")] = False,
    allow_mixed: Annotated[
        bool, typer.Option(help="resume a run file written by another version or revision")
    ] = False,
    concurrency: Annotated[int, typer.Option(min=1, help="pairs in flight at once")] = 1,
) -> None:
    """Label every (item, model): is the model's majority answer over SAMPLES right?"""
    from system2.assembly import build_worker
    from system2.evaluation import load_dataset
    from system2.pipelines.router_labels import collect_labels

    cfg = load_cli_config(config)
    try:
        items = [it for name in datasets for it in load_dataset(name, limit=limit, seed=seed)]
    except ValueError as exc:
        raise fail(exc) from None
    run_config = {
        "datasets": datasets,
        "limit": limit,
        "seed": seed,
        "worker_configs": {m: json.loads(w.model_dump_json()) for m, w in cfg.models.items()},
    }
    try:
        workers = {name: build_worker(name, wc) for name, wc in cfg.models.items()}
    except CatalogError as exc:
        raise fail(exc) from None

    async def run() -> dict[str, LabelStats]:
        try:
            return await collect_labels(
                items,
                workers,
                out,
                samples=samples,
                temperature=temperature,
                max_tokens=max_tokens,
                seed=sample_seed,
                greedy=greedy,
                prompts=cfg.prompts,
                run_config=run_config,
                retry_failed=retry_failed,
                allow_mixed=allow_mixed,
                concurrency=concurrency,
                console=console,
            )
        finally:
            await asyncio.gather(*(w.close() for w in workers.values()))

    try:
        stats = asyncio.run(run())
    except ValueError as exc:  # a labels file made with another config
        raise fail(exc) from None
    _print_label_stats(stats)


@app.command()
def train(
    labels: Annotated[Path, typer.Argument(help="labels file written by `router collect`")],
    out: Annotated[Path, typer.Option(help="directory to write the router into")],
    seed: Annotated[int, typer.Option(help="seed of the split and the training")] = 0,
    val_fraction: Annotated[
        float, typer.Option(min=0.01, max=0.99, help="items held out for the metrics")
    ] = 0.2,
    calibration_fraction: Annotated[
        float, typer.Option(min=0.01, max=0.99, help="items held out to calibrate on")
    ] = 0.2,
    calibration_folds: Annotated[
        int | None,
        typer.Option(
            min=2,
            help="cross-fit the calibration over K folds of the non-validation items instead "
            "of holding out --calibration-fraction (for small label sets)",
        ),
    ] = None,
    epochs: Annotated[int, typer.Option(min=1)] = 100,
    lr: Annotated[float, typer.Option(min=0.0)] = 1e-3,
    hidden: Annotated[int, typer.Option(min=1)] = 256,
    embedder: Annotated[str, typer.Option(help="catalog name of the embedder")] = (
        "all-minilm-l6-v2"
    ),
    arms: Annotated[
        Path | None,
        typer.Option(
            help="YAML config whose policy (kind compute_aware) declares arms: train one "
            "column per arm (labels of format 2, e.g. `collect --greedy`)"
        ),
    ] = None,
) -> None:
    """Train the router on collected labels; print its metrics on held-out items."""
    from policies.selectllm.train import train_router
    from system2.pipelines.router_labels import read_labels
    from workers.embedder import SentenceEmbedder

    try:
        header, records = read_labels(labels)
    except (OSError, ValueError) as exc:
        raise fail(exc) from None
    if header is None or not records:
        raise fail(f"{labels}: no labels (is it a file written by `system2 router collect`?)")
    rows, pool, arm_specs = list(records.values()), header.get("models"), None
    if arms is not None:
        rows, pool, arm_specs = _arm_rows(arms, header, rows)
    try:
        text_embedder = SentenceEmbedder.load(embedder)
        router, metrics = train_router(
            rows,
            text_embedder,
            seed=seed,
            val_fraction=val_fraction,
            calibration_fraction=calibration_fraction,
            calibration_folds=calibration_folds,
            epochs=epochs,
            lr=lr,
            hidden=hidden,
            models=pool,
        )
    except (CatalogError, ValueError) as exc:
        raise fail(exc) from None
    if arm_specs is not None:
        router.training["arms"] = arm_specs
    router.save(out)
    _print_metrics(metrics, calibration_folds)
    console.print(f"router written to {out}", highlight=False)


def _arm_rows(
    config: Path, header: dict[str, Any], records: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[str], dict[str, Any]]:
    """Arm label records, the arm names (the router's columns) and the arms as declared."""
    from policies.selectllm.arms import arm_label_records
    from policies.selectllm.compute_aware import ComputeAwarePolicyConfig

    policy = load_cli_config(config).policy
    if not isinstance(policy, ComputeAwarePolicyConfig):
        raise fail(f"{config}: --arms needs a policy of kind compute_aware, got {policy.kind}")
    try:
        rows = arm_label_records(header, records, policy.arms)
    except ValueError as exc:
        raise fail(exc) from None
    if not rows:
        raise fail("no item has an outcome for every arm (all pairs failed?)")
    specs = {a.name: a.model_dump(mode="json") for a in policy.arms}
    return rows, [a.name for a in policy.arms], specs


def _print_label_stats(stats: dict[str, LabelStats]) -> None:
    table = Table(title="labels")
    table.add_column("model", style="bold")
    for column in ("pairs", "right", "failed", "mean seconds", "mean gen. tokens"):
        table.add_column(column, justify="right")
    for model, s in stats.items():
        rate = f" ({s.positives / s.labelled:.0%})" if s.labelled else ""
        table.add_row(
            model,
            str(s.pairs),
            f"{s.positives}{rate}",
            str(s.failed),
            _num(s.mean_seconds, "{:.2f}"),
            _num(s.mean_completion_tokens, "{:.1f}"),
        )
    console.print(table)


def _print_metrics(metrics: RouterMetrics, calibration_folds: int | None = None) -> None:
    n = metrics.calibration_items
    calibrated = (
        f"calibrated on the same {n} out of fold ({calibration_folds} folds)"
        if calibration_folds
        else f"calibrated on {metrics.calibration_items}"
    )
    table = Table(
        title=f"validation ({metrics.val_items} held-out items; head trained on "
        f"{metrics.train_items}, {calibrated})"
    )
    table.add_column("model", style="bold", no_wrap=True)
    for column in ("n", "right", "accuracy", "precision", "recall", "F1", "slope", "spread"):
        table.add_column(column, justify="right")
    for model, m in metrics.per_model.items():
        table.add_row(
            model,
            str(m.n),
            f"{m.positive_rate:.0%}",
            f"{m.accuracy:.1%}",
            _num(m.precision, "{:.2f}"),
            _num(m.recall, "{:.2f}"),
            _num(m.f1, "{:.2f}"),
            f"{m.calibration_slope:.2g}",
            f"[yellow]{m.confidence_spread:.3f}[/yellow]"
            if m.constant_confidence
            else f"{m.confidence_spread:.3f}",
        )
    table.add_row(
        "all (micro)",
        "",
        "",
        f"{metrics.micro_accuracy:.1%}",
        "",
        "",
        _num(metrics.micro_f1, "{:.2f}"),
        "",
        "",
    )
    console.print(table)
    console.print(
        f"validation NLL: {metrics.nll_raw:.3f} raw, {metrics.nll_calibrated:.3f} calibrated "
        "(slope: Platt a; spread: calibrated confidence max - min over the calibration items)",
        highlight=False,
    )
    for model in metrics.constant_confidence:
        m = metrics.per_model[model]
        console.print(
            f"[yellow]warning:[/yellow] constant confidence for {model}: calibration slope "
            f"{m.calibration_slope:.2g}, its confidence varies by {m.confidence_spread:.2g} "
            f"over the {metrics.calibration_items} calibration items, so the router cannot "
            "tell its right queries from its wrong ones",
            highlight=False,
            soft_wrap=True,
        )


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None or math.isnan(value) else fmt.format(value)
