"""Self-consistency vs step beam search vs metastable graph search at equal token budget.

For each data set, SC@k runs first; its mean generated tokens per item becomes the token
budget of ``step_beam`` and ``metastable`` (so all three spend about the same). Reports
accuracy, generated tokens and wall seconds per item, and for metastable the graph
statistics (nodes, clusters, sparse edges per query). Each accuracy carries its 95%
Wilson interval, and each search is compared with SC@k on the same items (fixed, broken,
exact McNemar p). Resumable run files go under ``results/runs/``; the table to
``results/search.json``. ``--from-runs`` rebuilds the table, JSON and plot from the stored
run files without loading a model.

Run: python -m benchmarks.search [--datasets gsm_symbolic chain_sum] [--limit 20] [--k 6]
     [--engine vllm] [--embedding-merge] [--from-runs]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
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
from workers.base import Worker


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


async def run_one(
    name: str,
    dataset: str,
    strategy: StrategyConfig,
    worker: Worker | None,
    args: argparse.Namespace,
) -> tuple[dict[str, Any], float]:
    """Run (or resume) one strategy on one data set; with no worker, read its stored run
    file instead. Its row and its mean generated tokens per item."""
    out = run_file(dataset, name, args)
    summary: RunSummary
    if worker is None:
        summary = summarize(list(read_records(out)[1].values()))
    else:
        items = load_dataset(dataset, limit=args.limit, seed=args.seed)
        orch = Orchestrator({args.model: worker}, FixedPolicy((args.model,), strategy))
        run_config = {"dataset": dataset, "limit": args.limit, "seed": args.seed,
                      "model": args.model, "strategy": strategy.model_dump(),
                      **engine_fields(args)}  # fmt: skip
        summary = await run_eval(items, orch.answer, out, run_config=run_config)
    row: dict[str, Any] = {
        "dataset": dataset,
        "strategy": name,
        "items": summary.n,
        "accuracy": summary.accuracy,
        "accuracy_ci": accuracy_ci(item_correctness(out)),
        "tokens_mean": summary.completion_tokens_mean,
        "seconds_mean": summary.seconds_mean,
        "failures": summary.failures,
        **graph_stats(out),
    }
    return row, summary.completion_tokens_mean


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


def against_sc(rows: list[dict[str, Any]], args: argparse.Namespace) -> list[Comparison]:
    """Each search against SC@k on the same data set's items."""
    baseline = f"sc{args.k}"
    out = []
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        sc = (baseline, item_correctness(run_file(dataset, baseline, args)))
        for r in rows:
            if r["dataset"] == dataset and r["strategy"] != baseline:
                method = item_correctness(run_file(dataset, r["strategy"], args))
                out.append(Comparison.of(dataset, sc, (r["strategy"], method)))
    return out


async def run(args: argparse.Namespace) -> None:
    worker = None if args.from_runs else load_worker(args.model, args)
    rows = []
    try:
        for dataset in args.datasets:
            sc = SelfConsistencyConfig(n=args.k, temperature=0.7, max_tokens=args.max_tokens,
                                       seed=args.sample_seed)  # fmt: skip
            row, sc_tokens = await run_one(f"sc{args.k}", dataset, sc, worker, args)
            rows.append(row)
            budget = math.ceil(sc_tokens)
            common = {"budget_tokens": budget, "max_tokens": args.max_tokens,
                      "temperature": 0.7, "seed": args.sample_seed}  # fmt: skip
            beam = StepBeamConfig(beam_width=3, expansions=2, **common)
            meta = MetastableConfig(seed_paths=max(2, args.k // 2), **common)
            searches: list[tuple[str, StrategyConfig]] = [("step_beam", beam), ("metastable", meta)]
            if args.embedding_merge:
                merged = meta.model_copy(update={"merge": "embedding"})
                searches.append(("metastable_embedding", merged))
            for name, strategy in searches:
                if args.from_runs and not run_file(dataset, name, args).exists():
                    continue
                row, _ = await run_one(name, dataset, strategy, worker, args)
                rows.append({**row, "budget_tokens": budget})
    finally:
        if worker is not None:
            await worker.close()
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
            "plot": str(plot_path),
        },
        title=f"Search at equal token budget, {args.model}, {args.limit} items per data set",
    )


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
        "--from-runs", action="store_true", help="rebuild the outputs from the stored run files"
    )
    add_engine_options(parser)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
