"""``system2 latent``: train latent-reasoning models, chains -> vqvae -> finetune -> codi.

Every step writes under one directory (``--out``, layout in
``system2.pipelines.latent.layout``) and is resumable: a step finished under the same
config is skipped, one finished under another is refused (``--force`` redoes it), and the
chains step resumes item by item. The work is in ``system2.pipelines.latent``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, cast

import typer
from rich.table import Table

from system2.cli.output import console, fail
from system2.resumable_run import run_progress

__all__ = ["app"]

app = typer.Typer(
    help="Latent reasoning: chains of thought, chunk VQ-VAE, Token Assorted and CODI training.",
    no_args_is_help=True,
)

OutOpt = Annotated[Path, typer.Option(help="the pipeline's directory (every step's output)")]
ModelOpt = Annotated[
    str, typer.Option("--model", "-m", help="base model: catalog name or local directory")
]
ThreadsOpt = Annotated[int, typer.Option(min=1, help="torch CPU threads")]
ForceOpt = Annotated[bool, typer.Option(help="redo a step finished under another config")]
MaxLengthOpt = Annotated[
    int, typer.Option(min=16, help="leave out chains longer than this (prompt + chain + answer)")
]
DEFAULT_MODEL = "smollm2-135m-instruct"


def _set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


@contextmanager
def _progress(label: str) -> Iterator[Callable[[int, int, float], None]]:
    """A progress bar; yields the step hook that moves it."""
    bar = run_progress(label, console=console, enabled=True)
    with bar:
        task = bar.add_task("", total=None)

        def on_step(step: int, steps: int, loss: float) -> None:
            bar.update(task, completed=step, total=steps, description=f"loss {loss:.4f}")

        yield on_step


def _print_results(title: str, results: dict[str, Any]) -> None:
    table = Table(title=title, show_header=False)
    for key, value in results.items():
        if isinstance(value, list):
            continue
        shown = f"{value:,.4g}" if isinstance(value, float) else f"{value:,}"
        table.add_row(key.replace("_", " "), shown)
    console.print(table)


def _training_chains(out: Path, model: str, max_length: int) -> tuple[Any, Any, Any]:
    """The layout, the kept chains encoded by ``model``'s tokenizer, and the tokenizer."""
    from transformers import AutoTokenizer

    from system2.pipelines.latent import PipelineLayout
    from workers.catalog import resolve
    from workers.errors import CatalogError

    layout = PipelineLayout(out)
    try:
        tokenizer = AutoTokenizer.from_pretrained(resolve(model))
        return layout, layout.training_chains(tokenizer, max_length=max_length), tokenizer
    except (CatalogError, ValueError) as exc:
        raise fail(exc) from None


@app.command()
def chains(
    out: OutOpt,
    dataset: Annotated[str, typer.Argument(help="a numeric reasoning-gym task")] = "gsm_symbolic",
    limit: Annotated[int, typer.Option(min=1, help="training items")] = 2000,
    seed: Annotated[int, typer.Option(help="seed of the items (below 1000: eval's)")] = 0,
    source: Annotated[str, typer.Option(help="gold | generator | generator+gold")] = "gold",
    config: Annotated[Path | None, typer.Option("--config", "-c", help="generator's YAML")] = None,
    name: Annotated[str | None, typer.Option(help="which model of --config")] = None,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="generator: catalog name or directory")
    ] = None,
    threads: Annotated[int | None, typer.Option(min=1, help="torch threads (--model)")] = None,
    strategy: Annotated[str, typer.Option(help="generator: greedy | sc")] = "greedy",
    k: Annotated[int, typer.Option(min=1, help="samples of sc")] = 5,
    temperature: Annotated[float, typer.Option(min=0.0, help="of sc")] = 0.7,
    max_tokens: Annotated[int, typer.Option(min=1)] = 384,
    sample_seed: Annotated[int, typer.Option(help="seed of the sc samples")] = 0,
    concurrency: Annotated[int, typer.Option(min=1, help="items in flight at once")] = 1,
    retry_failed: Annotated[bool, typer.Option(help="rerun items recorded as failed")] = False,
    allow_mixed: Annotated[bool, typer.Option(help="resume a file of other code")] = False,
) -> None:
    """Chains of thought for training items, kept when their answer is right (the
    generator's, or the task's gold rationale); rerun to resume."""
    from orchestrator import GreedyConfig, Orchestrator, SelfConsistencyConfig, StrategyConfig
    from policies import FixedPolicy
    from system2.cli.verifier_generator import load_generator
    from system2.evaluation import load_dataset
    from system2.pipelines.latent import (
        ChainSource,
        PipelineLayout,
        check_training_seed,
        collect_chains,
        pending_items,
    )

    if source not in ("gold", "generator", "generator+gold"):
        raise fail(f"unknown --source {source!r}: gold, generator or generator+gold")
    if strategy not in ("greedy", "sc"):
        raise fail(f"unknown --strategy {strategy!r}: greedy or sc")
    plan: StrategyConfig = (
        GreedyConfig(max_tokens=max_tokens)
        if strategy == "greedy"
        else SelfConsistencyConfig(
            n=k, temperature=temperature, max_tokens=max_tokens, seed=sample_seed
        )
    )
    try:
        check_training_seed(seed, limit)
        items = load_dataset(dataset, limit=limit, seed=seed)
    except ValueError as exc:
        raise fail(exc) from None
    layout = PipelineLayout(out)
    out.mkdir(parents=True, exist_ok=True)
    run_config: dict[str, Any] = {"dataset": dataset, "seed": seed}
    answer_fn, worker = None, None
    if source != "gold":
        run_config["strategy"] = plan.model_dump(mode="json")
        if pending_items(items, layout.chains, retry_failed=retry_failed):
            gen = load_generator(config, name, model, threads)
            worker = gen.worker
            orch = Orchestrator(
                {worker.model_name: worker},
                FixedPolicy((worker.model_name,), plan),
                prompts=gen.prompts,
            )
            answer_fn = orch.answer
            run_config |= gen.described
        else:  # every item is recorded: reuse the file's generator, load no model
            run_config |= _recorded_generator(layout.chains)

    async def run() -> list[dict[str, Any]]:
        try:
            return await collect_chains(
                items,
                layout.chains,
                source=cast("ChainSource", source),
                answer_fn=answer_fn,
                run_config=run_config,
                retry_failed=retry_failed,
                allow_mixed=allow_mixed,
                concurrency=concurrency,
                console=console,
            )
        finally:
            if worker is not None:
                await worker.close()

    try:
        records = asyncio.run(run())
    except ValueError as exc:  # a chains file made under another config
        raise fail(exc) from None
    by_source: dict[str, int] = {}
    for r in records:
        key = r["source"] or r["status"]
        by_source[key] = by_source.get(key, 0) + 1
    _print_results(f"chains: {layout.chains}", {"items": len(records), **by_source})


def _recorded_generator(path: Path) -> dict[str, Any]:
    """The generator fields of a finished chains file's header (so a rerun matches it)."""
    from system2.pipelines.latent import read_chains

    header, _ = read_chains(path)
    return {k: v for k, v in (header or {}).items() if k in ("worker", "generator")}


@app.command()
def vqvae(
    out: OutOpt,
    model: ModelOpt = DEFAULT_MODEL,
    chunk_tokens: Annotated[int, typer.Option(min=1, help="L: text tokens per code")] = 16,
    codebook: Annotated[int, typer.Option(min=1, help="most codes (fewer on small data)")] = 1024,
    dim: Annotated[int, typer.Option(min=8)] = 128,
    layers: Annotated[int, typer.Option(min=1)] = 2,
    steps: Annotated[int, typer.Option(min=1)] = 2000,
    batch: Annotated[int, typer.Option(min=1)] = 64,
    lr: Annotated[float, typer.Option(min=0.0)] = 1e-3,
    seed: int = 0,
    max_length: MaxLengthOpt = 512,
    threads: ThreadsOpt = 2,
    force: ForceOpt = False,
) -> None:
    """Train the chunk VQ-VAE on the kept chains' chunks of L tokens."""
    from system2.pipelines.latent import VQVAEStepSettings, run_vqvae_step

    _set_threads(threads)
    layout, data, tokenizer = _training_chains(out, model, max_length)
    settings = VQVAEStepSettings(
        chunk_tokens=chunk_tokens,
        codebook_size=codebook,
        dim=dim,
        layers=layers,
        steps=steps,
        batch_size=batch,
        learning_rate=lr,
        seed=seed,
    )
    try:
        with _progress("vqvae") as on_step:
            marker = run_vqvae_step(
                data.chains,
                vocab_size=len(tokenizer),
                out=layout.vqvae,
                settings=settings,
                upstream=data.upstream(model),
                threads=threads,
                force=force,
                on_step=lambda step, loss: on_step(step, steps, loss),
            )
    except ValueError as exc:
        raise fail(exc) from None
    _print_results(f"vqvae: {layout.vqvae}", marker.results)


def _train_settings(**values: Any) -> Any:
    from system2.pipelines.latent import TrainSettings

    try:
        return TrainSettings(**values)
    except ValueError as exc:
        raise fail(exc) from None


ModeOpt = Annotated[str, typer.Option(help="full | last_layers")]
LayersOpt = Annotated[int, typer.Option(min=1, help="trained layers in last_layers mode")]
EpochsOpt = Annotated[int, typer.Option(min=1)]
BatchOpt = Annotated[int, typer.Option(min=1, help="examples per step")]
MaxStepsOpt = Annotated[int | None, typer.Option(min=1, help="stop after this many steps")]


@app.command()
def finetune(
    out: OutOpt,
    model: ModelOpt = DEFAULT_MODEL,
    arms: Annotated[str, typer.Option(help="comma-separated: latent,text")] = "latent,text",
    mode: ModeOpt = "full",
    layers: LayersOpt = 4,
    epochs: EpochsOpt = 1,
    batch: BatchOpt = 8,
    lr: Annotated[float, typer.Option(min=0.0)] = 5e-5,
    max_steps: MaxStepsOpt = None,
    max_chunks: Annotated[
        int | None, typer.Option(min=0, help="cap on m, the chunks replaced (default: all)")
    ] = None,
    replacement_seed: Annotated[int, typer.Option(help="seed of the m draws")] = 0,
    seed: Annotated[int, typer.Option(help="seed of batch order and init")] = 0,
    new_rows_step_scale: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="the added latent rows step this many times as far as AdamW moves them "
            "(1: plain AdamW; at 40 steps, 1 and 25 left the model never opening a latent span)",
        ),
    ] = 100.0,
    max_length: MaxLengthOpt = 512,
    threads: ThreadsOpt = 2,
    force: ForceOpt = False,
) -> None:
    """Token Assorted (latent) and the matched text-CoT (text) fine-tunes of the model."""
    from system2.pipelines.latent import ARMS, Arm, ReplacementSchedule, run_finetune_arm

    chosen = [a.strip() for a in arms.split(",") if a.strip()]
    unknown = [a for a in chosen if a not in ARMS]
    if unknown or not chosen:
        raise fail(f"unknown arms {unknown}: choose from {', '.join(ARMS)}")
    _set_threads(threads)
    settings = _train_settings(
        mode=mode, layers=layers, epochs=epochs, batch_size=batch, learning_rate=lr,
        max_steps=max_steps, seed=seed, new_rows_step_scale=new_rows_step_scale,
    )  # fmt: skip
    schedule = ReplacementSchedule(seed=replacement_seed, max_chunks=max_chunks)
    layout, data, _ = _training_chains(out, model, max_length)
    for arm in chosen:
        try:
            with _progress(f"finetune {arm}") as on_step:
                marker = run_finetune_arm(
                    cast("Arm", arm),
                    data.chains,
                    base_model=model,
                    vqvae_dir=layout.vqvae,
                    out=layout.finetune(cast("Arm", arm)),
                    settings=settings,
                    schedule=schedule,
                    upstream=data.upstream(model),
                    threads=threads,
                    force=force,
                    on_step=on_step,
                )
        except ValueError as exc:
            raise fail(exc) from None
        _print_results(f"finetune {arm}: {layout.finetune(cast('Arm', arm))}", marker.results)


@app.command()
def codi(
    out: OutOpt,
    model: Annotated[
        str, typer.Option("--model", "-m", help="the base model the text arm was tuned from")
    ] = DEFAULT_MODEL,
    thoughts: Annotated[int, typer.Option(min=1, help="k continuous thoughts")] = 6,
    distill_weight: Annotated[float, typer.Option(min=0.0)] = 1.0,
    mode: ModeOpt = "full",
    layers: LayersOpt = 4,
    epochs: EpochsOpt = 1,
    batch: BatchOpt = 8,
    lr: Annotated[float, typer.Option(min=0.0)] = 5e-5,
    max_steps: MaxStepsOpt = None,
    seed: int = 0,
    max_length: MaxLengthOpt = 512,
    threads: ThreadsOpt = 2,
    force: ForceOpt = False,
) -> None:
    """A continuous-thought student distilled from the text-CoT fine-tune (CODI-style)."""
    from system2.pipelines.latent import run_codi_step

    _set_threads(threads)
    settings = _train_settings(
        mode=mode, layers=layers, epochs=epochs, batch_size=batch, learning_rate=lr,
        max_steps=max_steps, seed=seed,
    )  # fmt: skip
    layout, data, _ = _training_chains(out, model, max_length)
    try:
        with _progress("codi") as on_step:
            marker = run_codi_step(
                data.chains,
                teacher_dir=layout.finetune("text"),
                out=layout.codi,
                settings=settings,
                thoughts=thoughts,
                distill_weight=distill_weight,
                upstream=data.upstream(model),
                threads=threads,
                force=force,
                on_step=on_step,
            )
    except ValueError as exc:
        raise fail(exc) from None
    _print_results(f"codi: {layout.codi}", marker.results)


@app.command()
def budget(out: OutOpt) -> None:
    """The finished steps' training budget (examples, epochs, steps, CPU-hours)."""
    from system2.pipelines.latent import PipelineLayout

    spent = PipelineLayout(out).budget()
    table = Table(title=f"training budget: {out}")
    for column in ("step", "examples", "epochs", "steps", "seconds", "CPU-hours"):
        table.add_column(column, justify="right")
    for step, row in spent["steps"].items():
        table.add_row(step, *(str(row[k]) for k in ("examples", "epochs", "steps", "seconds")),
                      f"{row['cpu_hours']:.3f}")  # fmt: skip
    console.print(table)
    console.print(f"CPU-hours in all: {spent['cpu_hours']:.3f}")
