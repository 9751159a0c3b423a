"""GSM-Symbolic accuracy vs compute: greedy, SC@5 and SC@10 on the embedded model.

Runs each strategy over the same items (one model load shared by all), writing resumable
run files under ``results/runs/`` (rerun to resume), then prints the comparison table,
writes ``results/gsm_strategies.json`` and a plot of accuracy against generated tokens.
It also reports the orchestrator overhead: wall time a query spent outside worker calls,
over its total wall time. Each accuracy carries its 95% Wilson interval; SC@k is compared
with greedy on the same items (fixed, broken, exact McNemar p); each vote's ties are
counted, with the rule that broke them. ``--from-runs`` rebuilds the table, the JSON and
the plot from the stored run files without loading a model.

Run: python -m benchmarks.gsm_strategies [--limit 30] [--seed 1234] [--concurrency 4]
     [--from-runs]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS, Comparison, accuracy_ci, item_correctness, report
from orchestrator import GreedyConfig, Orchestrator, SelfConsistencyConfig, StrategyConfig
from policies import FixedPolicy
from system2.evaluation import (
    RunSummary,
    compare,
    count_ties,
    load_dataset,
    load_run,
    plot_accuracy_vs_tokens,
    read_records,
    run_eval,
    summarize,
)
from workers.transformers_worker import TransformersWorker

MAX_TOKENS = 384
MAX_BATCH_ROWS = 32  # the worker's default batch size


def items_in_flight(strategy: StrategyConfig, limit: int) -> int:
    """As many items at once as fit one worker batch (so no row waits for a second batch)."""
    rows = strategy.n if isinstance(strategy, SelfConsistencyConfig) else 1
    return max(1, min(limit, MAX_BATCH_ROWS // rows))


def add_wall_time(run_file: Path, seconds: float) -> float:
    """Accumulate a run's wall time across resumed invocations (sidecar JSON); with
    ``seconds`` 0 it only reads the total."""
    sidecar = run_file.with_suffix(".wall.json")
    total = json.loads(sidecar.read_text())["wall_s"] if sidecar.exists() else 0.0
    if seconds:
        total += seconds
        sidecar.write_text(json.dumps({"wall_s": total}) + "\n")
    return float(total)


def run_file(name: str) -> Path:
    return RESULTS / "runs" / f"gsm_{name.replace('@', '')}.jsonl"


def strategies(seed: int) -> dict[str, StrategyConfig]:
    return {
        "greedy": GreedyConfig(max_tokens=MAX_TOKENS),
        "sc@5": SelfConsistencyConfig(n=5, temperature=0.7, max_tokens=MAX_TOKENS, seed=seed),
        "sc@10": SelfConsistencyConfig(n=10, temperature=0.7, max_tokens=MAX_TOKENS, seed=seed),
    }


def overhead(path: Path) -> dict[str, float]:
    """Share of query wall time spent outside worker calls, over all queries of a run.

    A worker call's seconds run from the call to its return at the seam, so time a request
    waits in the worker's own queue counts as worker time: this measures the orchestrator's
    Python time, not queueing inside a busy worker."""
    wall = worker = 0.0
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if record.get("type") != "item" or not record.get("trace"):
            continue
        trace = record["trace"]
        wall += float(record["seconds"])
        worker += sum(float(g["seconds"]) for g in trace["generations"])
    return {"wall_s": wall, "worker_s": worker, "overhead": (wall - worker) / wall if wall else 0.0}


def table_row(name: str, out: Path, summary: RunSummary, in_flight: int) -> dict[str, Any]:
    """One strategy's row, from its run file and summary."""
    (row,) = compare([load_run(out)])
    ties = count_ties(read_records(out)[1].values())
    return {
        "strategy": name,
        "items": summary.n,
        "accuracy": summary.accuracy,
        "accuracy_ci": accuracy_ci(item_correctness(out)),
        "tokens_mean": summary.completion_tokens_mean,
        "tokens_total": summary.completion_tokens_total,
        "query_s_mean": summary.seconds_mean,
        "run_wall_s": add_wall_time(out, 0.0),
        "items_in_flight": in_flight,
        "overhead": overhead(out)["overhead"],
        "failures": summary.failures,
        "vote_ties": f"{ties.ties}/{ties.votes}" if ties.votes else "-",
        "tie_rules": ties.by_rule,
        "name": row.name,
    }


def against_greedy(names: list[str]) -> list[Comparison]:
    """Every sampled strategy against greedy on the same items (when greedy ran)."""
    if "greedy" not in names:
        return []
    greedy = ("greedy", item_correctness(run_file("greedy")))
    return [
        Comparison.of("gsm_symbolic", greedy, (name, item_correctness(run_file(name))))
        for name in names
        if name != "greedy"
    ]


async def run_all(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Run (or resume) every chosen strategy; its rows."""
    items = load_dataset("gsm_symbolic", limit=args.limit, seed=args.seed)
    worker = TransformersWorker.load(args.model, model_name=args.model, threads=args.threads)
    rows: list[dict[str, Any]] = []
    for name, strategy in strategies(args.seed).items():
        if args.only and name not in args.only:
            continue
        orch = Orchestrator({args.model: worker}, FixedPolicy((args.model,), strategy))
        out = run_file(name)
        run_config = {
            "name": name,
            "dataset": "gsm_symbolic",
            "limit": args.limit,
            "seed": args.seed,
            "model": args.model,
            "strategy": strategy.model_dump(),
        }
        in_flight = items_in_flight(strategy, args.concurrency)
        started = time.perf_counter()
        summary = await run_eval(
            items, orch.answer, out, run_config=run_config, concurrency=in_flight
        )
        add_wall_time(out, time.perf_counter() - started)
        rows.append(table_row(name, out, summary, in_flight))
    await worker.close()
    return rows


def rows_from_runs(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The rows rebuilt from the stored run files (no model, nothing run)."""
    rows = []
    for name, strategy in strategies(args.seed).items():
        out = run_file(name)
        if (args.only and name not in args.only) or not out.exists():
            continue
        summary = summarize(list(read_records(out)[1].values()))
        rows.append(table_row(name, out, summary, items_in_flight(strategy, args.concurrency)))
    return rows


async def run(args: argparse.Namespace) -> None:
    previous = RESULTS / "gsm_strategies.json"
    machine = None
    if args.from_runs:
        rows = rows_from_runs(args)
        machine = json.loads(previous.read_text())["machine"] if previous.exists() else None
    else:
        rows = await run_all(args)
    plot = RESULTS / "gsm_strategies.png"
    plot_accuracy_vs_tokens(compare([load_run(run_file(r["strategy"])) for r in rows]), plot)
    report(
        "gsm_strategies",
        rows,
        comparisons=against_greedy([r["strategy"] for r in rows]),
        machine=machine,
        summary={
            "model": args.model,
            "items": args.limit,
            "seed": args.seed,
            "concurrency": args.concurrency,
            "plot": str(plot),
        },
        title=f"GSM-Symbolic, {args.model}, {args.limit} items, seed {args.seed}",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    parser.add_argument("--limit", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=4, help="most items in flight at once")
    parser.add_argument("--only", nargs="*", help="run only these strategies")
    parser.add_argument(
        "--from-runs", action="store_true", help="rebuild the outputs from the stored run files"
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
