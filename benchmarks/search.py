"""Self-consistency vs step beam search vs metastable graph search at equal token budget.

For each data set, SC@k runs first; its mean generated tokens per item becomes the token
budget of ``step_beam`` and ``metastable`` (so all three spend about the same). Reports
accuracy, generated tokens and wall seconds per item, and for metastable the graph
statistics (nodes, clusters, sparse edges per query). Resumable run files go under
``results/runs/``; the table to ``results/search.json``.

Run: python -m benchmarks.search [--datasets gsm_symbolic chain_sum] [--limit 20] [--k 6]
     [--engine vllm] [--embedding-merge]
"""

from __future__ import annotations

import argparse
import asyncio
import math
from pathlib import Path
from statistics import fmean
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from benchmarks.common import (
    RESULTS,
    add_engine_options,
    engine_fields,
    engine_suffix,
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
from system2.evaluation import load_dataset, read_records, run_eval
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


async def run_one(
    name: str,
    dataset: str,
    strategy: StrategyConfig,
    worker: Worker,
    args: argparse.Namespace,
) -> tuple[dict[str, Any], float]:
    items = load_dataset(dataset, limit=args.limit, seed=args.seed)
    orch = Orchestrator({args.model: worker}, FixedPolicy((args.model,), strategy))
    out = RESULTS / "runs" / f"search_{dataset}_{name}{engine_suffix(args)}.jsonl"
    run_config = {"dataset": dataset, "limit": args.limit, "seed": args.seed,
                  "model": args.model, "strategy": strategy.model_dump(),
                  **engine_fields(args)}  # fmt: skip
    summary = await run_eval(items, orch.answer, out, run_config=run_config)
    row: dict[str, Any] = {
        "dataset": dataset,
        "strategy": name,
        "items": summary.n,
        "accuracy": summary.accuracy,
        "tokens_mean": summary.completion_tokens_mean,
        "seconds_mean": summary.seconds_mean,
        "failures": summary.failures,
        **graph_stats(out),
    }
    return row, summary.completion_tokens_mean


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Accuracy against mean generated tokens, one panel per data set."""
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    fig, axes = plt.subplots(1, len(datasets), figsize=(5 * len(datasets), 4), squeeze=False)
    for ax, dataset in zip(axes[0], datasets, strict=True):
        for r in (r for r in rows if r["dataset"] == dataset):
            ax.scatter(r["tokens_mean"], r["accuracy"], s=40, label=r["strategy"], alpha=0.8)
        ax.legend(fontsize=8)
        ax.set_title(f"{dataset} ({rows[0]['items']} items)")
        ax.set_xlabel("generated tokens per item (mean)")
        ax.set_ylabel("accuracy")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


async def run(args: argparse.Namespace) -> None:
    worker = load_worker(args.model, args)
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
                row, _ = await run_one(name, dataset, strategy, worker, args)
                rows.append({**row, "budget_tokens": budget})
    finally:
        await worker.close()
    plot_path = RESULTS / "search.png"
    plot(rows, plot_path)
    report(
        "search",
        rows,
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
    add_engine_options(parser)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
