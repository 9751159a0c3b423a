"""Self-consistency vs step beam search vs metastable graph search at equal token budget.

For each data set, SC@k runs first; its mean generated tokens per item becomes the token
budget of ``step_beam`` and ``metastable`` (so all three spend about the same). Reports
accuracy, generated tokens and wall seconds per item, and for metastable the graph
statistics (nodes, clusters, sparse edges per query). Each accuracy carries its 95%
Wilson interval, and each search is compared with SC@k on the same items (fixed, broken,
exact McNemar p); ``tokens_vs_sc`` is a row's mean generated tokens over SC@k's, so
"equal tokens" can be checked rather than assumed. Resumable run files go under
``results/runs/``; the table to ``results/search.json``. ``--from-runs`` rebuilds the
table, JSON and plot from the stored run files without loading a model.

``--verifier DIR`` (a ``trunk_head`` or ``llm2`` directory written by ``system2 verifier
train``) adds ``step_beam_verifier`` and ``metastable_verifier``: the same searches at the
same budget with ``value: verifier``, a path's value read from the verifier's step scores
instead of the model's own confidence. Steps are scored by a transformers copy of the
generator with the verifier attached (``token_step_verifier``): the generator itself on
``--engine transformers``, a second, scoring-only load on ``--engine vllm`` (whose engine
keeps its verifier out of reach). Their run headers record the verifier directory and
kind, so a rerun with another verifier is refused rather than mixed in.

Run: python -m benchmarks.search [--datasets gsm_symbolic chain_sum] [--limit 20] [--k 6]
     [--engine vllm] [--embedding-merge] [--verifier DIR] [--from-runs] [--allow-mixed]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
from collections.abc import Mapping
from pathlib import Path
from statistics import fmean
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from benchmarks.common import (
    RESULTS,
    Comparison,
    accuracy_ci,
    add_engine_options,
    engine_fields,
    engine_suffix,
    item_correctness,
    load_worker,
    report,
)
from orchestrator import (
    MetastableConfig,
    Orchestrator,
    SelfConsistencyConfig,
    StepBeamConfig,
    StrategyConfig,
)
from policies import FixedPolicy
from system2.evaluation import RunSummary, load_dataset, read_records, run_eval, summarize
from workers.base import StepVerifier, Worker
from workers.verifier.trunk_kinds import saved_verifier_kind

__all__ = [
    "VERIFIER_SUFFIX",
    "against_baseline",
    "search_plan",
    "search_row",
    "verifier_dir",
    "verifier_fields",
    "with_token_ratio",
]

VERIFIER_SUFFIX = "_verifier"
"""What a search's row name gains when its paths are valued by the verifier."""


def graph_stats(path: Path) -> dict[str, float]:
    """Mean nodes, clusters and sparse edges per query of a metastable run."""
    _, records = read_records(path)
    searches = [
        r["trace"]["extra"]["search"]
        for r in records.values()
        if r.get("trace") and "search" in r["trace"]["extra"]
    ]
    if not searches or searches[0]["kind"] != "metastable":
        return {}
    return {k: fmean(s[k] for s in searches) for k in ("nodes", "clusters", "sparse_edges")}


def run_file(dataset: str, name: str, args: argparse.Namespace) -> Path:
    return RESULTS / "runs" / f"search_{dataset}_{name}{engine_suffix(args)}.jsonl"


def search_row(
    dataset: str, name: str, summary: RunSummary, correct: Mapping[str, bool]
) -> dict[str, Any]:
    """One table row from a run's summary and its per-item correctness."""
    return {
        "dataset": dataset,
        "strategy": name,
        "value": "verifier" if name.endswith(VERIFIER_SUFFIX) else "confidence",
        "items": summary.n,
        "accuracy": summary.accuracy,
        "accuracy_ci": accuracy_ci(correct),
        "tokens_mean": summary.completion_tokens_mean,
        "seconds_mean": summary.seconds_mean,
        "failures": summary.failures,
    }


async def run_one(
    name: str,
    dataset: str,
    strategy: StrategyConfig,
    worker: Worker | None,
    args: argparse.Namespace,
    verifier: StepVerifier | None = None,
) -> tuple[dict[str, Any], float]:
    """Run (or resume) one strategy on one data set (``verifier``: the step verifier, for
    ``value: verifier``); with no worker, read its stored run file instead. Its row and its
    mean generated tokens per item."""
    out = run_file(dataset, name, args)
    summary: RunSummary
    if worker is None:
        summary = summarize(list(read_records(out)[1].values()))
    else:
        items = load_dataset(dataset, limit=args.limit, seed=args.seed)
        policy = FixedPolicy((args.model,), strategy)
        orch = Orchestrator({args.model: worker}, policy, step_verifier=verifier)
        run_config = {"dataset": dataset, "limit": args.limit, "seed": args.seed,
                      "model": args.model, "strategy": strategy.model_dump(),
                      **engine_fields(args), **verifier_fields(strategy, args)}  # fmt: skip
        summary = await run_eval(
            items, orch.answer, out, run_config=run_config, allow_mixed=args.allow_mixed
        )
    row = {**search_row(dataset, name, summary, item_correctness(out)), **graph_stats(out)}
    return row, summary.completion_tokens_mean


def verifier_fields(strategy: StrategyConfig, args: argparse.Namespace) -> dict[str, str]:
    """What the run header of a search valued by the verifier gains: the verifier used."""
    if getattr(strategy, "value", None) != "verifier":
        return {}
    return {"verifier": str(args.verifier), "verifier_kind": saved_verifier_kind(args.verifier)}


def search_plan(args: argparse.Namespace, budget: int) -> list[tuple[str, StrategyConfig]]:
    """The searches to run at ``budget`` generated tokens per item: step beam and
    metastable (and metastable with embedding merging, if asked), then, with a verifier (or
    when rebuilding from stored runs), each of the first two again with ``value:
    verifier``, otherwise identical."""
    common = {"budget_tokens": budget, "max_tokens": args.max_tokens, "temperature": 0.7,
              "seed": args.sample_seed}  # fmt: skip
    beam = StepBeamConfig(beam_width=3, expansions=2, **common)
    meta = MetastableConfig(seed_paths=max(2, args.k // 2), **common)
    plan: list[tuple[str, StrategyConfig]] = [("step_beam", beam), ("metastable", meta)]
    if args.embedding_merge:
        plan.append(("metastable_embedding", meta.model_copy(update={"merge": "embedding"})))
    if args.verifier is not None or args.from_runs:
        for name, config in list(plan[:2]):
            valued = config.model_copy(update={"value": "verifier"})
            plan.append((name + VERIFIER_SUFFIX, valued))
    return plan


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Accuracy (with its 95% interval) against mean generated tokens, one panel per data
    set."""
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    fig, axes = plt.subplots(1, len(datasets), figsize=(5 * len(datasets), 4), squeeze=False)
    for ax, dataset in zip(axes[0], datasets, strict=True):
        for r in (r for r in rows if r["dataset"] == dataset):
            low, high = r["accuracy_ci"]
            ax.errorbar(r["tokens_mean"], r["accuracy"], yerr=[[r["accuracy"] - low],
                        [high - r["accuracy"]]], fmt="o", capsize=3, label=r["strategy"],
                        alpha=0.8)  # fmt: skip
        ax.legend(fontsize=8)
        ax.set_title(f"{dataset} ({rows[0]['items']} items)")
        ax.set_xlabel("generated tokens per item (mean)")
        ax.set_ylabel("accuracy")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def against_baseline(
    baseline: str, runs: Mapping[str, Mapping[str, Mapping[str, bool]]]
) -> list[Comparison]:
    """Every run against ``baseline`` on the same data set's items; ``runs``: data set ->
    run name -> item id -> correct (a data set without the baseline is skipped)."""
    out = []
    for dataset, by_name in runs.items():
        if baseline not in by_name:
            continue
        for name, correct in by_name.items():
            if name != baseline:
                out.append(Comparison.of(dataset, (baseline, by_name[baseline]), (name, correct)))
    return out


def with_token_ratio(rows: list[dict[str, Any]], baseline: str) -> list[dict[str, Any]]:
    """``rows`` with ``tokens_vs_sc``: mean generated tokens over the ``baseline`` row's of
    the same data set (None where it has none, or spent none)."""
    spent = {r["dataset"]: r["tokens_mean"] for r in rows if r["strategy"] == baseline}
    out = []
    for r in rows:
        base = spent.get(r["dataset"])
        out.append({**r, "tokens_vs_sc": r["tokens_mean"] / base if base else None})
    return out


def against_sc(rows: list[dict[str, Any]], args: argparse.Namespace) -> list[Comparison]:
    """Each search against SC@k on the same data set's items (read from the run files)."""
    runs: dict[str, dict[str, Mapping[str, bool]]] = {}
    for r in rows:
        path = run_file(r["dataset"], r["strategy"], args)
        runs.setdefault(r["dataset"], {})[r["strategy"]] = item_correctness(path)
    return against_baseline(f"sc{args.k}", runs)


def load_generator(args: argparse.Namespace) -> tuple[Worker, StepVerifier | None, list[Worker]]:
    """The generator, the step verifier (with ``--verifier``) and every worker to close."""
    if args.verifier is None:
        worker = load_worker(args.model, args)
        return worker, None, [worker]
    from workers.transformers_worker import TransformersWorker

    scorer = TransformersWorker.load(
        args.model, model_name=args.model, threads=args.threads, verifier=args.verifier
    )
    if args.engine == "transformers":  # generating with a verifier attached is unchanged
        return scorer, scorer.token_step_verifier(), [scorer]
    return load_worker(args.model, args), scorer.token_step_verifier(), [scorer]


async def run(args: argparse.Namespace) -> None:
    generator: Worker | None = None
    verifier: StepVerifier | None = None
    workers: list[Worker] = []
    if not args.from_runs:
        generator, verifier, workers = load_generator(args)
    baseline = f"sc{args.k}"
    rows = []
    try:
        for dataset in args.datasets:
            sc = SelfConsistencyConfig(n=args.k, temperature=0.7, max_tokens=args.max_tokens,
                                       seed=args.sample_seed)  # fmt: skip
            row, sc_tokens = await run_one(baseline, dataset, sc, generator, args)
            rows.append(row)
            budget = math.ceil(sc_tokens)
            for name, strategy in search_plan(args, budget):
                if args.from_runs and not run_file(dataset, name, args).exists():
                    continue
                row, _ = await run_one(name, dataset, strategy, generator, args, verifier)
                rows.append({**row, "budget_tokens": budget})
    finally:
        for worker in workers:
            await worker.close()
    rows = with_token_ratio(rows, baseline)
    plot_path = RESULTS / "search.png"
    plot(rows, plot_path)
    previous = RESULTS / "search.json"
    from_runs = args.from_runs and previous.exists()
    report(
        "search",
        rows,
        comparisons=against_sc(rows, args),
        machine=json.loads(previous.read_text())["machine"] if from_runs else None,
        summary={
            "model": args.model,
            "limit": args.limit,
            "seed": args.seed,
            "k": args.k,
            "engine": args.engine,
            "verifier": None if args.verifier is None else str(args.verifier),
            "plot": str(plot_path),
        },
        title=f"Search at equal token budget, {args.model}, {args.limit} items per data set",
        results=RESULTS,
    )


def verifier_dir(value: str) -> Path:
    """``--verifier``: a directory holding a saved verifier of a known kind."""
    try:
        saved_verifier_kind(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return Path(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    parser.add_argument("--datasets", nargs="+", default=["gsm_symbolic", "chain_sum"])
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--seed", type=int, default=4321, help="held-out item seed")
    parser.add_argument("--sample-seed", type=int, default=0)
    parser.add_argument("--k", type=int, default=6, help="SC samples; sets the budget")
    parser.add_argument("--max-tokens", type=int, default=320)
    parser.add_argument(
        "--embedding-merge", action="store_true", help="also metastable with embedding merging"
    )
    parser.add_argument(
        "--verifier",
        type=verifier_dir,
        help="a trunk_head or llm2 verifier directory: also the searches with value: verifier",
    )
    parser.add_argument(
        "--from-runs", action="store_true", help="rebuild the outputs from the stored run files"
    )
    parser.add_argument(
        "--allow-mixed",
        action="store_true",
        help="resume run files written by other code, or read complete ones written before "
        "settings they lack existed",
    )
    add_engine_options(parser)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
