"""The ``system2`` command line: ask, eval, report, graph, models, router and verifier."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer

from orchestrator.orchestrator import Orchestrator
from orchestrator.types import Query, TaskType
from system2.assembly import build_orchestrator
from system2.cli.config_file import load_cli_config
from system2.cli.graph_cmd import graph
from system2.cli.latent_cmd import app as latent_app
from system2.cli.models_cmd import app as models_app
from system2.cli.output import console, err, fail
from system2.cli.router_cmd import app as router_app
from system2.cli.serve_cmd import serve
from system2.cli.signals import StoppableGroup
from system2.cli.verifier_cmd import app as verifier_app
from system2.config import ConfigError, System2Config
from system2.ray.cli_options import eval_on_ray, with_ray_address
from workers.errors import CatalogError

__all__ = ["app"]

app = typer.Typer(
    help="system2: better answers from pools of language models.",
    no_args_is_help=True,
    cls=StoppableGroup,  # SIGTERM stops any command as Ctrl-C does; exit 130 / 143
)
app.add_typer(models_app, name="models")
app.add_typer(router_app, name="router")
app.add_typer(verifier_app, name="verifier")
app.add_typer(latent_app, name="latent")
app.command()(graph)
app.command()(serve)

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="YAML config (default: built-in)")
]


def _build(cfg: System2Config) -> Orchestrator:
    """Build the workers (loads the models) and the policy."""
    try:
        return build_orchestrator(cfg)
    except (ConfigError, CatalogError) as exc:
        raise fail(exc) from None


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="the question to answer")],
    config: ConfigOption = None,
    task: Annotated[TaskType, typer.Option(help="task type: how the answer is read")] = "math",
    as_json: Annotated[bool, typer.Option("--json", help="print the whole Answer as JSON")] = False,
) -> None:
    """Answer one question and print the answer (and, with --json, its trace)."""
    orch = _build(load_cli_config(config))

    async def run() -> None:
        async with orch:
            answer = await orch.answer(Query(text=question, task=task))
        if as_json:
            typer.echo(answer.model_dump_json(indent=2))
            return
        console.print(answer.text.strip(), highlight=False)
        console.rule()
        vote = answer.trace.vote
        margin = f", vote margin {vote.margin:.2f}" if vote else ""
        console.print(
            f"[bold]answer:[/bold] {answer.answer}  ({answer.status}, "
            f"{answer.usage.completion_tokens} tokens, {answer.usage.wall_seconds:.1f} s{margin})",
            highlight=False,
        )
        for failure in answer.trace.failures:
            err.print(f"[yellow]note:[/yellow] {failure}", highlight=False)

    asyncio.run(run())


@app.command("eval")
def eval_(
    dataset: Annotated[
        str, typer.Argument(help="gsm_symbolic, humaneval, or a reasoning-gym task")
    ],
    out: Annotated[Path, typer.Option(help="run file (JSONL); rerun to resume")],
    config: ConfigOption = None,
    limit: Annotated[int, typer.Option(min=1, help="number of items")] = 30,
    seed: Annotated[int, typer.Option(help="seed that generates / selects the items")] = 0,
    retry_failed: Annotated[bool, typer.Option(help="rerun items recorded as failed")] = False,
    allow_mixed: Annotated[
        bool, typer.Option(help="resume a run file written by another version or revision")
    ] = False,
    concurrency: Annotated[
        int, typer.Option(min=1, help="items in flight at once (lets the worker batch them)")
    ] = 1,
    on_ray: Annotated[
        bool,
        typer.Option("--ray", help="answer and score the items in Ray actors over a cluster"),
    ] = False,
    address: Annotated[
        str | None,
        typer.Option(help="Ray cluster to join (auto, HOST:PORT, ray://...; default: ray.address)"),
    ] = None,
    ray_actors: Annotated[
        int, typer.Option(min=1, help="with --ray: actors, each building the orchestrator")
    ] = 2,
    ray_actor_cpus: Annotated[
        float, typer.Option(min=0.0, help="with --ray: CPUs each actor reserves")
    ] = 1.0,
) -> None:
    """Evaluate a config on a dataset; resumable, with a summary table at the end."""
    from system2.evaluation import load_dataset, print_summary, run_eval

    cfg = with_ray_address(load_cli_config(config), address)
    try:
        items = load_dataset(dataset, limit=limit, seed=seed)
    except ValueError as exc:
        raise fail(exc) from None
    run_config = {
        "dataset": dataset,
        "limit": limit,
        "seed": seed,
        # Where it runs (the cluster) is no part of what a run computes: --address or
        # another cluster resumes the same file.
        "config": json.loads(cfg.model_dump_json(exclude={"ray"})),
    }

    if on_ray:
        summary = eval_on_ray(
            items,
            cfg,
            out,
            run_config=run_config,
            actors=ray_actors,
            actor_cpus=ray_actor_cpus,
            concurrency=concurrency,
            retry_failed=retry_failed,
            allow_mixed=allow_mixed,
        )
        print_summary(summary, console=console)
        return
    orch = _build(cfg)

    async def run() -> None:
        async with orch:
            summary = await run_eval(
                items,
                orch.answer,
                out,
                run_config=run_config,
                retry_failed=retry_failed,
                allow_mixed=allow_mixed,
                concurrency=concurrency,
            )
        print_summary(summary, console=console)

    try:
        asyncio.run(run())
    except ValueError as exc:  # a run file made with another config
        raise fail(exc) from None


@app.command()
def report(
    runs: Annotated[
        list[Path],
        typer.Argument(help="run files written by system2 eval; the first is the baseline"),
    ],
    plot: Annotated[Path, typer.Option(help="PNG plot of accuracy vs generated tokens")] = Path(
        "report.png"
    ),
) -> None:
    """Compare runs in a table (accuracy with its 95% interval, vote ties), pair every later
    run with the first on the same items (fixed, broken, exact McNemar p) and plot accuracy
    against generated tokens (the rows as JSON beside the plot)."""
    from system2.evaluation import compare, load_run, plot_accuracy_vs_tokens, print_report

    rows = compare([load_run(p) for p in runs])
    print_report(rows, console=console)
    json_path = plot_accuracy_vs_tokens(rows, plot)
    console.print(f"plot written to {plot}, rows to {json_path}")


def main() -> None:
    app()
