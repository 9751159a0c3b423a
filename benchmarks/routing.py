"""Query-aware routing on a mixed query set: single models, all-models vote, random
subsets, the three SelectLLM rules, a cascade and the oracle, on the same model outputs.

1. ``collect`` (as ``system2 router collect``): every pool model answers every training and
   every test query ``--samples`` times; votes, seconds and tokens are kept. Train and test
   items come from different seeds. Resumable run files under ``results/runs/``.
2. ``train`` (as ``system2 router train``) on the training labels; the router is saved
   under ``results/routers/`` (the selectllm example YAML points at it).
3. Replay every policy on the test labels (``policies.selectllm.replay``): identical samples for
   all policies, no resampling. Prints per-family model accuracy and disagreement, the
   policy table, writes ``results/routing.json`` and a plot of accuracy against latency.

Pairs run one at a time (``--concurrency 1``) so each pair's seconds are that model's own.

``--probe`` instead picks the data sets: every model answers ``--probe-limit`` items of
each candidate family (``--datasets``, seed 300, kept apart from train and test), and the
table shows per family each model's accuracy and how often their labels differ.

Run: python -m benchmarks.routing [--config examples/routing_agent/selectllm.yaml]
     [--datasets gsm_symbolic basic_arithmetic ...] [--train-limit 20] [--test-limit 12]
Probe: python -m benchmarks.routing --probe --datasets gsm_symbolic chain_sum gcd ...
The pool on in-process vLLM engines (faster on CPU too):
     --config examples/routing_agent/selectllm_vllm.yaml
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from statistics import fmean
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from benchmarks.common import RESULTS, report
from orchestrator.strategies.config import SelfConsistencyConfig
from policies.selectllm.policy import SelectLLMPolicy
from policies.selectllm.replay import (
    PolicyScore,
    ReplayItem,
    replay_items,
    score_cascade,
    score_oracle,
    score_random_subsets,
    score_selections,
)
from policies.selectllm.router import QueryRouter
from policies.selectllm.rules import Selection
from policies.selectllm.train import train_router
from system2.assembly import build_worker
from system2.config import load_config
from system2.evaluation import EvalItem, load_dataset, score_item
from system2.pipelines.router_labels import collect_labels, read_labels
from workers.embedder import SentenceEmbedder

DEFAULT_DATASETS = ["gsm_symbolic", "basic_arithmetic", "leg_counting", "letter_counting"]
PROBE_SEED = 300


def load_items(datasets: Sequence[str], limit: int, seed: int) -> list[EvalItem]:
    return [item for name in datasets for item in load_dataset(name, limit=limit, seed=seed)]


async def collect(
    config_path: Path, items: Sequence[EvalItem], out: Path, args: argparse.Namespace
) -> list[dict[str, Any]]:
    cfg = load_config(config_path)
    engines = {name: wc.kind for name, wc in cfg.models.items()}
    workers = {name: build_worker(name, wc) for name, wc in cfg.models.items()}
    try:
        await collect_labels(
            items,
            workers,
            out,
            samples=args.samples,
            temperature=0.7,
            max_tokens=args.max_tokens,
            seed=args.sample_seed,
            prompts=cfg.prompts,
            run_config={"datasets": args.datasets, "engines": engines},
            concurrency=args.concurrency,
            retry_failed=args.retry_failed,
        )
    finally:
        await asyncio.gather(*(w.close() for w in workers.values()))
    _, records = read_labels(out)
    return list(records.values())


def complete_items(records: Sequence[Mapping[str, Any]], pool: Sequence[str]) -> set[str]:
    """Items every pool model answered without failing (replay needs all of them)."""
    ok: dict[str, set[str]] = {}
    for r in records:
        if r["status"] != "failed":
            ok.setdefault(r["item"], set()).add(r["model"])
    return {item for item, models in ok.items() if models >= set(pool)}


def family(item_id: str) -> str:
    return item_id.split("/", 1)[0]


def disagreement(records: Sequence[Mapping[str, Any]], pool: Sequence[str]) -> list[dict[str, Any]]:
    """Per data set: each model's accuracy (majority answer right) and the share of items
    where the models' labels differ (the room a router has)."""
    items = replay_items(records, pool)
    rows = []
    for name in sorted({family(i.id) for i in items}):
        mine = [i for i in items if family(i.id) == name]
        row: dict[str, Any] = {"dataset": name, "items": len(mine)}
        for m in pool:
            row[m] = fmean(float(i.outcomes[m].correct) for i in mine)
        row["labels_differ"] = fmean(
            float(len({i.outcomes[m].correct for m in pool}) > 1) for i in mine
        )
        rows.append(row)
    return rows


def replay_policies(
    items: Sequence[ReplayItem],
    router: QueryRouter,
    judge: Callable[[str, str | None], bool],
    args: argparse.Namespace,
) -> list[PolicyScore]:
    pool = router.models
    confidences = dict(
        zip([i.id for i in items], router.confidences([i.question for i in items]), strict=True)
    )

    def only(model: str) -> Callable[[ReplayItem], Selection]:
        return lambda item: Selection((model,))

    def routed(policy: SelectLLMPolicy) -> Callable[[ReplayItem], Selection]:
        return lambda item: policy.select(confidences[item.id])

    scores = [score_selections(m, items, only(m), judge) for m in pool]
    scores.append(score_selections("all (vote)", items, lambda i: Selection(pool), judge))
    for k in range(1, len(pool)):
        scores.append(score_random_subsets(f"random-{k}", items, pool, k, judge))
    strategy = SelfConsistencyConfig(n=args.samples)
    rules: list[tuple[str, SelectLLMPolicy]] = [
        ("maxconf", SelectLLMPolicy(router, "maxconf", strategy)),
        ("labelled_maxconf", SelectLLMPolicy(router, "labelled_maxconf", strategy)),
        ("weighted_maxconf", SelectLLMPolicy(router, "weighted_maxconf", strategy)),
    ]
    for name, policy in rules:
        scores.append(score_selections(name, items, routed(policy), judge))
    cheapest_first = sorted(pool, key=lambda m: router.latency[m])
    scores.append(score_cascade("cascade", items, cheapest_first, args.min_margin, judge))
    scores.append(score_oracle("oracle", items, pool))
    return scores


def plot(scores: Sequence[PolicyScore], path: Path) -> None:
    # Policies that chose the same models land on one point: one label lists them all.
    points: dict[tuple[float, float], list[str]] = {}
    for s in scores:
        points.setdefault((round(s.latency_s, 2), round(s.accuracy, 4)), []).append(s.policy)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for (latency, accuracy), names in points.items():
        ax.scatter(latency, accuracy, s=30)
        ax.annotate("\n".join(names), (latency, accuracy), fontsize=8, xytext=(4, 2),
                    textcoords="offset points", va="top")  # fmt: skip
    ax.set_xlabel("mean latency per query (s, models side by side)")
    ax.set_ylabel("accuracy")
    ax.set_title("Routing policies on held-out queries")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


async def probe(args: argparse.Namespace) -> None:
    items = load_items(args.datasets, args.probe_limit, PROBE_SEED)
    records = await collect(args.config, items, RESULTS / "runs" / "routing_probe.jsonl", args)
    pool = list(load_config(args.config).models)
    answered = complete_items(records, pool)
    report(
        "routing_probe",
        disagreement([r for r in records if r["item"] in answered], pool),
        summary={"items_per_family": args.probe_limit, "samples": args.samples},
        title="Probe: where the pool models disagree",
    )


async def run(args: argparse.Namespace) -> None:
    runs = RESULTS / "runs"
    train_items = load_items(args.datasets, args.train_limit, args.train_seed)
    test_items = load_items(args.datasets, args.test_limit, args.test_seed)
    overlap = {i.query.text for i in train_items} & {i.query.text for i in test_items}
    test_items = [i for i in test_items if i.query.text not in overlap]
    train = await collect(args.config, train_items, runs / "routing_train.jsonl", args)
    test = await collect(args.config, test_items, runs / "routing_test.jsonl", args)

    embedder = SentenceEmbedder.load()
    router, metrics = train_router(train, embedder, seed=0, epochs=args.epochs)
    router_dir = RESULTS / "routers" / "mixed"
    router.save(router_dir)

    pool = router.models
    by_id = {item.id: item for item in test_items}

    def judge(item_id: str, answer: str | None) -> bool:
        return score_item(by_id[item_id], answer).correct

    complete = complete_items(test, pool)
    items = replay_items([r for r in test if r["item"] in complete], pool)
    scores = replay_policies(items, router, judge, args)
    trained_on = complete_items(train, pool)
    report(
        "routing_families",
        disagreement([r for r in train if r["item"] in trained_on], pool),
        title="Training set: who is right",
    )
    plot_path = RESULTS / "routing.png"
    plot(scores, plot_path)
    report(
        "routing",
        [s.row() for s in scores],
        summary={
            "datasets": args.datasets,
            "train_items": len({r["item"] for r in train}),
            "test_items": len(items),
            "test_items_incomplete": len({r["item"] for r in test}) - len(items),
            "excluded_overlapping_test_items": len(overlap),
            "samples": args.samples,
            "max_tokens": args.max_tokens,
            "router": str(router_dir),
            "router_val": metrics.to_dict(),
            "plot": str(plot_path),
        },
        title=f"Routing on {len(items)} held-out queries ({', '.join(args.datasets)})",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--config", type=Path, default=Path("examples/routing_agent/selectllm.yaml")
    )
    parser.add_argument("--datasets", nargs="+", default=DEFAULT_DATASETS)
    parser.add_argument("--train-limit", type=int, default=20, help="items per data set")
    parser.add_argument("--test-limit", type=int, default=12, help="items per data set")
    parser.add_argument("--train-seed", type=int, default=100)
    parser.add_argument("--test-seed", type=int, default=200)
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--sample-seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--min-margin", type=float, default=0.6, help="cascade escalation")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument(
        "--retry-failed", action="store_true", help="rerun pairs recorded as failed"
    )
    parser.add_argument("--probe", action="store_true", help="only measure disagreement")
    parser.add_argument("--probe-limit", type=int, default=4, help="items per data set")
    args = parser.parse_args()
    asyncio.run(probe(args) if args.probe else run(args))


if __name__ == "__main__":
    main()
