"""``system2 verifier eval``: greedy and SC@k against their verifier-guided and re-voted
modes on the same items, for one or more saved verifiers (``--verifier`` repeated), with
paired exact tests against the unguided modes (``system2.evaluation.guided_run``).

``--kind`` and ``--source`` choose among the given verifiers: only those of the kinds and
trained on triplets of the source run their guided modes (the unguided ones run anyway),
so one command line serves a rerun of a subset, each mode resuming its own run file. On
a vLLM generator the re-votes' steps are scored by a transformers copy of its weights with
the verifier attached (the engine keeps its own out of reach).
Registered on ``verifier_cmd``'s app.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer

from system2.cli.output import console, fail
from system2.cli.verifier_generator import load_generator

if TYPE_CHECKING:
    from orchestrator.aggregation.verifier_vote import PathAggregate
    from system2.evaluation.guided_run import OpenedWorker
    from system2.evaluation.verifier_provenance import VerifierSpec
    from workers.base import Worker

__all__ = ["eval_"]

DatasetArg = Annotated[str, typer.Argument(help="gsm_symbolic or another numeric task")]


def eval_(
    out_dir: Annotated[Path, typer.Option(help="one run file per mode; rerun to resume")],
    verifier: Annotated[
        list[Path] | None,
        typer.Option(help="directory written by `verifier train`; repeat for several"),
    ] = None,
    kind: Annotated[
        list[str] | None,
        typer.Option(
            help="run the guided modes of verifiers of this kind only: llm2, trunk_head "
            "(repeatable)"
        ),
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(help="... and only of verifiers trained on triplets from: rollouts, paths"),
    ] = None,
    dataset: DatasetArg = "gsm_symbolic",
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="YAML config whose model to use")
    ] = None,
    name: Annotated[
        str | None,
        typer.Option("--name", help="which model of --config (default: the policy's first)"),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="catalog name or local directory (instead of --config)"),
    ] = None,
    threads: Annotated[
        int | None, typer.Option(min=1, help="torch CPU threads (with --model)")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="items")] = 20,
    seed: Annotated[
        int, typer.Option(help="seed of the items: keep it away from the training seeds")
    ] = 1000,
    modes: Annotated[
        str, typer.Option(help="comma-separated: greedy,guided_greedy,sc,guided_sc")
    ] = "greedy,guided_greedy,sc,guided_sc",
    k: Annotated[int, typer.Option(min=1, help="samples of the SC modes")] = 5,
    beta: Annotated[float, typer.Option(min=0.0)] = 0.25,
    alpha: Annotated[float, typer.Option(min=0.0, max=1.0)] = 0.1,
    top_k: Annotated[int, typer.Option(min=0, help="most candidates per step")] = 10,
    temperature: Annotated[float, typer.Option(min=0.0, help="of the SC modes")] = 0.7,
    top_p: Annotated[
        float,
        typer.Option(min=0.01, max=1.0, help="of the SC modes (1.0 skips vLLM's top-p sort)"),
    ] = 0.95,
    max_tokens: Annotated[int, typer.Option(min=1)] = 512,
    sample_seed: Annotated[int, typer.Option(help="seed of the SC samples")] = 0,
    concurrency: Annotated[int, typer.Option(min=1, help="items in flight at once")] = 1,
    verifier_vote: Annotated[
        bool,
        typer.Option(help="also re-vote the SC modes' candidates weighted by each verifier"),
    ] = True,
    vote_aggregate: Annotated[
        str, typer.Option(help="path score from step scores: min, mean, last")
    ] = "min",
    allow_mixed: Annotated[
        bool, typer.Option(help="resume run files written by another version or revision")
    ] = False,
) -> None:
    """Greedy vs guided greedy and SC@k vs guided SC@k on the same items, per verifier (and,
    with --verifier-vote, the SC modes' candidates voting with each verifier's step
    scores); print the table with 95% intervals and paired exact tests."""
    from system2.evaluation import load_dataset
    from system2.evaluation.guided import GUIDED_MODES, GuidedComparison, GuidedMode
    from system2.evaluation.guided_report import print_guided
    from system2.evaluation.guided_run import OpenedWorker, compare_guided, token_step_verifier
    from system2.evaluation.verifier_provenance import describe_verifiers, select_verifiers

    if vote_aggregate not in ("min", "mean", "last"):
        raise fail(f"unknown --vote-aggregate {vote_aggregate!r}; known: min, mean, last")
    aggregate = cast("PathAggregate", vote_aggregate)
    chosen: list[GuidedMode] = []
    for mode in (m.strip() for m in modes.split(",") if m.strip()):
        if mode not in GUIDED_MODES:
            raise fail(f"unknown mode {mode!r}; known: {', '.join(GUIDED_MODES)}")
        chosen.append(mode)
    try:
        settings = GuidedComparison(
            beta=beta,
            alpha=alpha,
            top_k=top_k,
            k=k,
            temperature=temperature,
            top_p=top_p,
            max_tokens=max_tokens,
            seed=sample_seed,
        )
        for mode in chosen:
            settings.strategy(mode)  # invalid combinations fail before the model loads
        specs = select_verifiers(describe_verifiers(verifier or []), kinds=kind, source=source)
        if any(m.startswith("guided") for m in chosen) and not specs:
            raise ValueError("the guided modes need a --verifier")
        items = load_dataset(dataset, limit=limit, seed=seed)
    except ValueError as exc:
        raise fail(exc) from None

    revotes = verifier_vote and any(m.endswith("sc") for m in chosen)

    def open_worker(spec: VerifierSpec | None) -> OpenedWorker:
        gen = load_generator(config, name, model, threads, verifier=spec.path if spec else None)
        scorer = None
        if spec is not None and revotes and token_step_verifier(gen.worker) is None:
            scorer = _scoring_copy(gen.checkpoint, spec.path, threads)
        return OpenedWorker(gen.worker, gen.described, gen.prompts, scorer)

    async def run() -> None:
        results = await compare_guided(
            items,
            open_worker,
            out_dir,
            verifiers=specs,
            settings=settings,
            modes=chosen,
            run_config={"dataset": dataset, "limit": limit, "seed": seed},
            concurrency=concurrency,
            console=console,
            revote=verifier_vote,
            aggregate=aggregate,
            allow_mixed=allow_mixed,
        )
        print_guided(results, console=console)

    try:
        asyncio.run(run())
    except ValueError as exc:  # a run file made with another config
        raise fail(exc) from None


def _scoring_copy(checkpoint: str | None, verifier: Path, threads: int | None) -> Worker:
    """The generator's weights on transformers with ``verifier`` attached, to score the
    re-votes' steps for an engine that cannot (vLLM keeps its verifier in the engine)."""
    from workers.transformers_worker import TransformersWorker

    if checkpoint is None:
        raise fail("the re-votes need the generator's checkpoint to score steps; use --model")
    return TransformersWorker.load(checkpoint, threads=threads, verifier=verifier)
