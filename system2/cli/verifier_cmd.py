"""``system2 verifier``: the token verifier loop, synthesize -> train -> eval.

Two triplet sources (``synthesize --source``: ``rollouts``, or ``paths`` reusing the
candidates of run files) and two verifier kinds (``train --kind``: ``llm2``, a copy of the
generator, or ``trunk_head``, a head on its hidden states). ``train --source`` checks the
triplets' source and the saved verifier records it; ``eval --kind / --source`` choose
among the given verifiers (``verifier_eval_cmd``). ``synthesize`` has no ``--kind``: one
triplets file trains either kind.

The generator is ``--model`` (a catalog name or a local directory, run in-process), or a
model of a ``--config`` (``--name``; default: the policy's first model), or, with neither,
the built-in config's model.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer
from rich.table import Table

from system2.cli.output import console, fail
from system2.cli.verifier_eval_cmd import eval_
from system2.cli.verifier_generator import load_generator
from system2.cli.verifier_triplets_cmd import path_triplets, paths_triplets, print_stats
from system2.resumable_run import run_progress

if TYPE_CHECKING:
    from workers.verifier import TrainableMode, VerifierKind
    from workers.verifier.train import TrainingMetrics

__all__ = ["app"]

app = typer.Typer(
    help="Token verifier: synthesize triplets, train the verifier, evaluate guidance.",
    no_args_is_help=True,
)
app.command("eval")(eval_)
app.command("triplets-from-runs")(paths_triplets)

DatasetArg = Annotated[str, typer.Argument(help="gsm_symbolic or another numeric task")]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="YAML config whose model to use")
]
NameOpt = Annotated[
    str | None, typer.Option("--name", help="which model of --config (default: the policy's first)")
]
ModelOpt = Annotated[
    str | None,
    typer.Option("--model", "-m", help="catalog name or local directory (instead of --config)"),
]
ThreadsOpt = Annotated[int | None, typer.Option(min=1, help="torch CPU threads (with --model)")]


@app.command()
def synthesize(
    out: Annotated[Path, typer.Option(help="triplets file (JSONL); rerun to resume")],
    dataset: DatasetArg = "gsm_symbolic",
    source: Annotated[
        str,
        typer.Option(
            help="rollouts (explore and roll out; generates) | paths (where --runs' right "
            "and wrong candidates part; no generation)"
        ),
    ] = "rollouts",
    runs: Annotated[
        list[Path] | None,
        typer.Option(help="paths: run files with per-candidate texts (repeatable)"),
    ] = None,
    max_per_item: Annotated[
        int, typer.Option(min=0, help="paths: triplets kept per question (0: no cap)")
    ] = 8,
    config: ConfigOpt = None,
    name: NameOpt = None,
    model: ModelOpt = None,
    threads: ThreadsOpt = None,
    limit: Annotated[int, typer.Option(min=1, help="items")] = 20,
    seed: Annotated[int, typer.Option(help="seed that generates the items")] = 0,
    references: Annotated[int, typer.Option(min=1, help="correct references per item")] = 1,
    reference_samples: Annotated[
        int, typer.Option(min=0, help="sampled tries for references after the greedy one")
    ] = 4,
    gold_rationale: Annotated[
        bool, typer.Option(help="fall back to the task's gold rationale")
    ] = False,
    positions: Annotated[int, typer.Option(min=1, help="positions per reference")] = 4,
    alternatives: Annotated[int, typer.Option(min=1, help="alternatives per position")] = 3,
    rollouts: Annotated[int, typer.Option(min=1, help="rollouts per token")] = 4,
    margin: Annotated[
        float, typer.Option(help="negative if acc <= gold acc - margin (paths: branch accs.)")
    ] = 0.5,
    threshold: Annotated[float, typer.Option(help="explore where p(gold) < threshold")] = 0.9,
    alpha: Annotated[float, typer.Option(help="alternatives need p >= alpha * max p")] = 0.1,
    plausible_gold: Annotated[
        bool, typer.Option(help="explore only where the gold token is alpha-plausible too")
    ] = True,
    temperature: Annotated[float, typer.Option(help="of samples and rollouts")] = 0.7,
    max_tokens: Annotated[int, typer.Option(min=1, help="per reference / rollout")] = 384,
    sample_seed: Annotated[int, typer.Option(help="seed of samples and rollouts")] = 0,
    concurrency: Annotated[int, typer.Option(min=1, help="items in flight at once")] = 1,
    retry_failed: Annotated[bool, typer.Option(help="rerun items recorded as failed")] = False,
    allow_mixed: Annotated[
        bool, typer.Option(help="resume a run file written by another version or revision")
    ] = False,
) -> None:
    """Write (position, x+, x-) triplets: from rollouts of token alternatives of correct
    solutions, or (--source paths) from where sampled right and wrong paths part; the
    item and generation options then do not apply (items and prompts come from the runs)."""
    from system2.evaluation import load_dataset
    from system2.pipelines.verifier_triplets import ExplorationSettings, synthesize_triplets

    if source == "paths":
        path_triplets(
            runs or [],
            out,
            model=model,
            margin=margin,
            max_per_item=max_per_item,
            allow_mixed=allow_mixed,
        )
        return
    if source != "rollouts":
        raise fail(f"unknown --source {source!r}: rollouts or paths")
    if runs:
        raise fail("--runs is for --source paths; rollouts generate their own samples")
    try:
        settings = ExplorationSettings(
            references=references,
            reference_samples=reference_samples,
            gold_rationale=gold_rationale,
            alternatives=alternatives,
            positions=positions,
            gold_prob_threshold=threshold,
            alpha=alpha,
            plausible_gold=plausible_gold,
            rollouts=rollouts,
            margin=margin,
            temperature=temperature,
            max_tokens=max_tokens,
            seed=sample_seed,
        )
        items = load_dataset(dataset, limit=limit, seed=seed)
    except ValueError as exc:
        raise fail(exc) from None
    gen = load_generator(config, name, model, threads)
    # No limit here: a later run with a larger --limit extends the same file.
    run_config = {"dataset": dataset, "seed": seed, "source": "rollouts", **gen.described}

    async def run() -> None:
        try:
            stats = await synthesize_triplets(
                items,
                gen.worker,
                out,
                settings=settings,
                prompts=gen.prompts,
                run_config=run_config,
                retry_failed=retry_failed,
                allow_mixed=allow_mixed,
                concurrency=concurrency,
                console=console,
            )
        finally:
            await gen.worker.close()
        print_stats(stats, f"triplets: {out.name}")

    try:
        asyncio.run(run())
    except ValueError as exc:  # a triplets file made with other settings
        raise fail(exc) from None


@app.command()
def train(
    triplets: Annotated[Path, typer.Argument(help="file written by `verifier synthesize`")],
    out: Annotated[Path, typer.Option(help="directory to save the verifier into")],
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="generator (default: the file's)")
    ] = None,
    threads: ThreadsOpt = None,
    kind: Annotated[
        str, typer.Option(help="llm2 (a copy of the generator) | trunk_head (a head on its states)")
    ] = "llm2",
    source: Annotated[
        str | None,
        typer.Option(help="refuse triplets from another source than this: rollouts, paths"),
    ] = None,
    rank: Annotated[int, typer.Option(min=1, help="the trunk head's rank")] = 16,
    mode: Annotated[
        str, typer.Option(help="llm2: head | last_layers | full | lora")
    ] = "last_layers",
    layers: Annotated[int, typer.Option(min=1, help="trained layers in last_layers mode")] = 2,
    lora_rank: Annotated[int, typer.Option(min=1)] = 8,
    epochs: Annotated[
        int | None, typer.Option(min=1, help="default: 2 (llm2), 20 (trunk_head)")
    ] = None,
    batch: Annotated[int, typer.Option(min=1, help="sequences per step")] = 8,
    lr: Annotated[float, typer.Option(min=0.0, help="backbone learning rate")] = 2e-5,
    head_lr: Annotated[
        float, typer.Option(min=0.0, help="the head's learning rate (trunk_head: U and V's)")
    ] = 1e-3,
    val_fraction: Annotated[float, typer.Option(min=0.0, max=0.95)] = 0.2,
    seed: Annotated[int, typer.Option(help="seed of the split, shuffles and init")] = 0,
) -> None:
    """Train the verifier (Bradley-Terry on packed triplets); save it with metrics.json.

    ``--kind trunk_head`` trains a low-rank head on the frozen generator's hidden states
    (one forward pass per sequence, then cheap epochs); ``eval`` and configs load either
    kind from the directory. The triplets' source (and cost) goes into metrics.json."""
    from system2.evaluation.verifier_provenance import (
        TRIPLET_SOURCES,
        record_training_data,
        triplets_source,
    )
    from system2.pipelines.verifier_training import (
        NoTripletsError,
        TrainingSetupError,
        prepare_training,
        recorded_generator,
    )
    from system2.pipelines.verifier_triplets import read_triplets, triplet_stats
    from workers.verifier import TrainSettings

    if mode not in ("head", "last_layers", "full", "lora"):
        raise fail(f"unknown mode {mode!r}: head, last_layers, full or lora")
    if kind not in ("llm2", "trunk_head"):
        raise fail(f"unknown kind {kind!r}: llm2 or trunk_head")
    try:
        header, records = read_triplets(triplets)
        found = triplets_source(header, triplets)
    except (OSError, ValueError) as exc:
        raise fail(exc) from None
    if source is not None and source not in TRIPLET_SOURCES:
        raise fail(f"unknown --source {source!r}: {', '.join(TRIPLET_SOURCES)}")
    if source is not None and source != found:
        raise fail(f"{triplets} holds triplets from {found}, not from {source} (--source)")
    generator = model or recorded_generator(header)
    if not generator:
        raise fail(f"{triplets}: no generator recorded; pass --model")
    settings = TrainSettings(
        mode=cast("TrainableMode", mode),
        trainable_layers=layers,
        lora_rank=lora_rank,
        epochs=epochs if epochs is not None else (20 if kind == "trunk_head" else 2),
        batch_size=batch,
        lr=lr,
        head_lr=head_lr,
        val_fraction=val_fraction,
        seed=seed,
    )
    try:
        training = prepare_training(
            records.values(),
            generator,
            settings,
            threads=threads,
            kind=cast("VerifierKind", kind),
            rank=rank,
        )
    except NoTripletsError:
        raise fail(f"{triplets}: no triplets to train on") from None
    except TrainingSetupError as exc:
        raise fail(exc) from None
    bar = run_progress("train", console=console, enabled=True)
    with bar:
        task = bar.add_task("", total=None)

        def on_step(step: int, steps: int, loss: float) -> None:
            bar.update(task, completed=step, total=steps, description=f"loss {loss:.4f}")

        metrics = training.run(out, on_step=on_step)
    stats = vars(triplet_stats(records.values()))
    record_training_data(out, triplets=triplets, source=found, stats=stats)
    _print_training(metrics)
    console.print(f"verifier written to {out}", highlight=False)


def _print_training(metrics: TrainingMetrics) -> None:
    table = Table(
        title=(
            f"training: {metrics.train_triplets} triplets / {metrics.train_items} items, "
            f"validation: {metrics.val_triplets} / {metrics.val_items}"
        )
    )
    for column in ("epoch", "train loss", "val loss", "val pairwise acc.", "seconds"):
        table.add_column(column, justify="right")
    for e in metrics.epochs:
        table.add_row(
            str(e.epoch),
            "-" if e.train_loss is None else f"{e.train_loss:.4f}",
            "-" if e.val_loss is None else f"{e.val_loss:.4f}",
            "-" if e.val_accuracy is None else f"{e.val_accuracy:.1%}",
            f"{e.seconds:.1f}",
        )
    console.print(table)
