"""HumanEval top-1 pass rate of each reranker on the same candidates: random, Coder,
Coder-Reviewer, CodeRSA, and oracle@n, with what sampling and each reranker cost.

For each model, ``n`` candidates per problem are sampled once (temperature 1.2, top-p 0.95,
each sample cut at the closing code fence); every reranker then picks from that one set,
sharing the model calls they have in common (``rerank`` with ``compare``). Candidate code
runs only to score the picks, in the sandbox. Random is reported as its expectation (the
pass rate of the reranked candidates), not one draw.

Each pass rate carries its 95% interval (Wilson; a bootstrap over problems for random's
expectation), and the rerankers are compared pairwise on the same problems (Coder-Reviewer
and CodeRSA against Coder, CodeRSA against Coder-Reviewer: fixed, broken, exact McNemar p).

Run files go under ``results/runs/`` (rerun to resume); the table goes to
``results/codersa.json``. Items run one at a time, so every call's seconds are its own.
``--from-runs`` rebuilds the rows of the given models from their stored run files.

Run: python -m benchmarks.codersa [--models qwen2.5-coder-0.5b-instruct ...] [--limit 40]
     [--from-runs]
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from statistics import fmean
from typing import Any

from benchmarks.common import (
    RESULTS,
    Comparison,
    accuracy_ci,
    add_engine_options,
    engine_fields,
    item_correctness,
    load_worker,
    report,
)
from orchestrator import Orchestrator, RerankConfig, RSARerankerConfig
from policies import FixedPolicy
from system2.evaluation import load_dataset, read_records, run_eval, summarize
from system2.evaluation.stats import bootstrap_interval

RERANKERS = ("coder", "coder_reviewer", "rsa")
PAIRS = (("coder", "coder_reviewer"), ("coder", "rsa"), ("coder_reviewer", "rsa"))
"""(baseline, method) reranker pairs compared on the same problems."""
FENCE_CLOSE = "\n```\n"


def strategy(n: int, seed: int, max_tokens: int) -> RerankConfig:
    return RerankConfig(
        n=n,
        temperature=1.2,
        top_p=0.95,
        max_tokens=max_tokens,
        seed=seed,
        stop=(FENCE_CLOSE,),
        reranker=RSARerankerConfig(),
        compare=("coder", "coder_reviewer", "random"),
    )


def costs(path: Path) -> dict[str, float]:
    """Mean per item: sampling seconds and tokens, and each reranker's seconds and tokens."""
    _, records = read_records(path)
    traces = [r["trace"] for r in records.values() if r.get("trace")]
    out: dict[str, float] = {}
    sampling = [t["generations"][0] for t in traces if t["generations"]]
    out["sample_s"] = fmean(g["seconds"] for g in sampling) if sampling else 0.0
    out["sample_tokens"] = fmean(g["completion_tokens"] for g in sampling) if sampling else 0.0
    reranks = [t["extra"]["rerank"] for t in traces if "usage" in t["extra"].get("rerank", {})]
    for kind in RERANKERS:
        usages = [
            r["usage"] if r["reranker"] == kind else r["compare"][kind]["usage"] for r in reranks
        ]
        out[f"{kind}_s"] = fmean(u["wall_seconds"] for u in usages) if usages else 0.0
        out[f"{kind}_tokens"] = (
            fmean(u["prompt_tokens"] + u["completion_tokens"] for u in usages) if usages else 0.0
        )
    out["kept_mean"] = fmean(len(r["kept"]) for r in reranks) if reranks else 0.0
    return out


def run_file(model: str, n: int, engine: str) -> Path:
    suffix = "" if engine == "transformers" else f"_{engine}"  # as ``engine_suffix``
    return RESULTS / "runs" / f"codersa_{model}_n{n}{suffix}.jsonl"


def label(row: dict[str, Any]) -> str:
    """Which run a row or comparison belongs to: model, n and engine."""
    return f"{row['model']} n{row['n']} {row.get('engine', 'transformers')}"


def intervals(out: Path) -> dict[str, list[float]]:
    """95% intervals of each pass rate: Wilson for the rerankers and oracle@n, a seeded
    bootstrap over problems for random's expectation (a fraction per problem)."""
    _, records = read_records(out)
    cis = {f"{kind}_ci": accuracy_ci(item_correctness(out, kind)) for kind in RERANKERS}
    cis["oracle@n_ci"] = accuracy_ci({k: bool(r.get("oracle")) for k, r in records.items()})
    expected = [float(r.get("random_expected", 0.0)) for r in records.values()]
    if expected:
        cis["random_ci"] = list(bootstrap_interval(expected, lambda xs: sum(xs) / len(xs)))
    return cis


def comparisons(row: dict[str, Any], out: Path) -> list[Comparison]:
    """The reranker pairs of ``PAIRS`` on this run's problems."""
    picks = {kind: item_correctness(out, kind) for kind in RERANKERS}
    return [Comparison.of(label(row), (a, picks[a]), (b, picks[b])) for a, b in PAIRS]


async def run_model(model: str, args: argparse.Namespace) -> tuple[dict[str, Any], Path]:
    """Run (or resume; with ``--from-runs`` only read) one model's run; its row and file."""
    out = run_file(model, args.n, args.engine)
    if args.from_runs:
        summary = summarize(list(read_records(out)[1].values()))
    else:
        items = load_dataset("humaneval", limit=args.limit, seed=args.seed)
        config = strategy(args.n, args.sample_seed, args.max_tokens)
        worker = load_worker(model, args)
        orch = Orchestrator({model: worker}, FixedPolicy((model,), config), task="code")
        run_config = {
            "dataset": "humaneval",
            "limit": args.limit,
            "seed": args.seed,
            "model": model,
            "strategy": config.model_dump(),
            **engine_fields(args),
        }
        try:
            summary = await run_eval(items, orch.answer, out, run_config=run_config)
        finally:
            await worker.close()
    rates = summary.rerankers
    row: dict[str, Any] = {
        "model": model,
        "engine": args.engine,
        "items": summary.n,
        "n": args.n,
        "random": rates.get("random (expected)", 0.0),
        **{kind: rates.get(kind, 0.0) for kind in RERANKERS},
        "oracle@n": summary.oracle or 0.0,
        **intervals(out),
        "failures": summary.failures,
        **costs(out),
    }
    return row, out


async def run(args: argparse.Namespace) -> None:
    fresh = [await run_model(model, args) for model in args.models]
    path = RESULTS / "codersa.json"
    stored = json.loads(path.read_text()) if path.exists() else {}
    by_label = {label(row): (row, out) for row, out in fresh}
    everything = []  # the stored rows in their order, fresh ones replacing theirs
    for row in stored.get("rows", []):
        out = run_file(row["model"], row["n"], row.get("engine", "transformers"))
        kept = (row | intervals(out) if out.exists() else row, out)
        everything.append(by_label.pop(label(row), kept))
    everything += by_label.values()
    pairs = [c for row, out in everything if out.exists() for c in comparisons(row, out)]
    report(
        "codersa",
        [row for row, _ in everything],
        comparisons=pairs,
        machine=stored.get("machine") if args.from_runs else None,
        summary={"limit": args.limit, "problem_seed": args.seed, "sample_seed": args.sample_seed},
        title=f"HumanEval top-1 by reranker, {args.limit} problems",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--models",
        nargs="+",
        default=["qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-1.5b-instruct"],
    )
    parser.add_argument("--limit", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0, help="0: the first LIMIT problems")
    parser.add_argument("--sample-seed", type=int, default=0)
    parser.add_argument("--n", type=int, default=10)
    parser.add_argument("--max-tokens", type=int, default=384)
    parser.add_argument(
        "--from-runs", action="store_true", help="rebuild the outputs from the stored run files"
    )
    add_engine_options(parser)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
