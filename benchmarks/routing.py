"""Routing that pays: choose a (model, strategy) arm per query on an accuracy-cost curve.

The pool config (``--config``, policy ``compute_aware``) declares the models and the arms
(e.g. SmolLM2 greedy / SC@3, Qwen-0.5B greedy / SC@3).

1. ``collect`` (as ``system2 router collect --greedy``): per (item, model) one greedy
   answer and ``k`` ordered samples (k = the largest SC arm), one model at a time, on
   training and test items from different seeds (texts in both are dropped from the test
   set). Resumable run files
   ``runs/routing_arms_{train,test}.jsonl``; a rerun reuses every pair recorded, so the
   benchmark runs from existing files and collects only what is missing
   (``--no-collect``: use only what the files hold). Many pairs run at once
   (``--concurrency``; vLLM engines batch them), so recorded seconds include batching.
2. Labels per (item, arm) from the samples (``policies.selectllm.arms``: SC@k votes the
   first k samples); the arm router (MiniLM embeddings, one calibrated column per arm) is
   trained on the training items alone (20% validation; the calibration cross-fitted over
   ``--calibration-folds`` folds of the other 80%, since a 20% calibration split of 60
   items is 12 points), and so is SelectLLM's per-model router (labels: majority of all k
   samples).
3. On the test items: each single arm; random mixing between arms (the upper concave
   envelope of the arm points); the compute-aware policy swept over its threshold and over
   its cost weight; SelectLLM's three rules and the all-models vote (pooled SC@k votes,
   ``policies.selectllm.replay``); the cascade over each model's largest SC arm, cheapest
   first, its margin chosen on the training items (and at the old fixed 0.6); the oracle
   (per item the cheapest right arm). Cost is ``--cost`` (``seconds``: engine seconds at
   the worker seam, an SC@k arm's prorated by its tokens; or ``tokens``: generated tokens).

Reported: the cost at which the threshold policy first reaches the best single arm's
accuracy (goal: <= 60% of that arm's cost), the area between the policy's frontier and
random mixing (the mean accuracy gained at equal cost over the arms' cost range) with a
bootstrap interval over test items, the SelectLLM rules against the all-models vote and the
policy against the best arm (exact McNemar), Wilson intervals on every accuracy. Writes
``results/routing.json`` and ``results/routing.png`` (accuracy against cost).

Run: python -m benchmarks.routing --config examples/routing_agent/compute_aware_vllm.yaml
     [--datasets gsm_symbolic letter_counting simple_equations chain_sum]
     [--train-limit 60] [--test-limit 40] [--concurrency 16] [--cost seconds]
Smoke run on a tiny subset, elsewhere: --train-limit 3 --test-limit 2 --results /tmp/r
Probe (which families separate the arms): --probe --datasets gsm_symbolic chain_sum gcd ...
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS, report
from benchmarks.routing_curves import CurveInputs, curve_report
from policies.selectllm.arms import (
    ArmConfig,
    ArmOutcome,
    arm_label_records,
    arm_outcomes,
    collection_settings,
)
from policies.selectllm.compute_aware import ComputeAwarePolicyConfig
from policies.selectllm.train import train_router
from system2.assembly import build_worker
from system2.config import System2Config, load_config
from system2.evaluation import EvalItem, load_dataset
from system2.pipelines.router_labels import collect_labels, read_labels
from system2.resumable_run import is_settled
from workers.embedder import SentenceEmbedder

DEFAULT_DATASETS = ["gsm_symbolic", "letter_counting", "simple_equations", "chain_sum"]
PROBE_SEED = 300
Records = list[dict[str, Any]]


def load_items(datasets: Sequence[str], limit: int, seed: int) -> list[EvalItem]:
    return [item for name in datasets for item in load_dataset(name, limit=limit, seed=seed)]


def pool_arms(cfg: System2Config, path: Path) -> tuple[ArmConfig, ...]:
    if not isinstance(cfg.policy, ComputeAwarePolicyConfig):
        raise SystemExit(f"{path}: the routing benchmark needs a policy of kind compute_aware")
    return cfg.policy.arms


async def collect(
    cfg: System2Config, items: Sequence[EvalItem], out: Path, args: argparse.Namespace
) -> tuple[dict[str, Any], Records]:
    """Collect the missing pairs into ``out`` (unless ``--no-collect``) and read it back.

    One model at a time, in pool order: its engine alone in memory and on the cores with many
    of its pairs in flight, closed before the next one starts (all three models at once on two
    cores labelled 8 pairs in 37 minutes)."""
    if not args.no_collect:
        arms = pool_arms(cfg, args.config)
        settings = collection_settings(arms)
        used = {name: wc for name, wc in cfg.models.items() if name in {a.model for a in arms}}
        engines = {name: wc.kind for name, wc in used.items()}
        recorded = read_labels(out)[1]
        for name, worker_config in used.items():
            settled = (
                is_settled(recorded.get((i.id, name)), retry_failed=args.retry_failed)
                for i in items
            )
            if all(settled):
                continue  # no engine start for a model with nothing left to collect
            worker = build_worker(name, worker_config)
            try:
                await collect_labels(
                    items,
                    {name: worker},
                    out,
                    pool=list(used),
                    samples=settings.samples,
                    temperature=settings.temperature,
                    top_p=settings.top_p,
                    max_tokens=settings.max_tokens,
                    seed=args.sample_seed,
                    greedy=settings.greedy,
                    prompts=cfg.prompts,
                    run_config={"datasets": args.datasets, "engines": engines},
                    concurrency=args.concurrency,
                    retry_failed=args.retry_failed,
                    allow_mixed=args.allow_mixed,
                )
            finally:
                await worker.close()
    header, records = read_labels(out)
    if header is None:
        raise SystemExit(f"{out}: no run file (run without --no-collect to collect it)")
    wanted = {item.id for item in items}
    return header, [r for r in records.values() if r["item"] in wanted]


def family(item_id: str) -> str:
    return item_id.split("/", 1)[0]


def arm_table(
    outcomes: Mapping[str, Mapping[str, ArmOutcome]], arms: Sequence[str]
) -> list[dict[str, Any]]:
    """Per data set: each arm's accuracy and how often the arms' labels differ."""
    rows = []
    for name in sorted({family(i) for i in outcomes}):
        mine = [row for i, row in outcomes.items() if family(i) == name]
        row: dict[str, Any] = {"dataset": name, "items": len(mine)}
        for arm in arms:
            row[arm] = sum(r[arm].correct for r in mine) / len(mine)
        row["labels_differ"] = sum(len({r[a].correct for a in arms}) > 1 for r in mine) / len(mine)
        rows.append(row)
    return rows


def train_routers(
    train_header: Mapping[str, Any],
    train: Records,
    arms: Sequence[ArmConfig],
    results: Path,
    epochs: int,
    calibration_folds: int | None,
) -> dict[str, Any]:
    """The arm router and SelectLLM's model router, trained on the training items only."""
    embedder = SentenceEmbedder.load()
    arm_router, arm_metrics = train_router(
        arm_label_records(train_header, train, arms),
        embedder,
        seed=0,
        epochs=epochs,
        models=[a.name for a in arms],
        calibration_folds=calibration_folds,
    )
    arm_router.training["arms"] = {a.name: a.model_dump(mode="json") for a in arms}
    arm_router.save(results / "routers" / "arms")
    model_router, model_metrics = train_router(
        train,
        embedder,
        seed=0,
        epochs=epochs,
        models=train_header["models"],
        calibration_folds=calibration_folds,
    )
    model_router.save(results / "routers" / "mixed")
    return {
        "arm_router": arm_router,
        "arm_metrics": arm_metrics,
        "model_router": model_router,
        "model_metrics": model_metrics,
    }


async def probe(args: argparse.Namespace) -> None:
    cfg = load_config(args.config)
    arms = pool_arms(cfg, args.config)
    items = load_items(args.datasets, args.probe_limit, PROBE_SEED)
    out = args.results / "runs" / "routing_arms_probe.jsonl"
    header, records = await collect(cfg, items, out, args)
    outcomes = arm_outcomes(header, records, arms)
    report(
        "routing_probe",
        arm_table(outcomes, [a.name for a in arms]),
        summary={"items_per_family": args.probe_limit, "seed": PROBE_SEED},
        title="Probe: where the arms disagree",
        results=args.results,
    )


async def run(args: argparse.Namespace) -> None:
    cfg = load_config(args.config)
    arms = pool_arms(cfg, args.config)
    runs = args.results / "runs"
    train_items = load_items(args.datasets, args.train_limit, args.train_seed)
    test_items = load_items(args.datasets, args.test_limit, args.test_seed)
    overlap = {i.query.text for i in train_items} & {i.query.text for i in test_items}
    test_items = [i for i in test_items if i.query.text not in overlap]
    train_header, train = await collect(cfg, train_items, runs / "routing_arms_train.jsonl", args)
    test_header, test = await collect(cfg, test_items, runs / "routing_arms_test.jsonl", args)

    folds = args.calibration_folds or None
    trained = train_routers(train_header, train, arms, args.results, args.epochs, folds)
    train_outcomes = arm_outcomes(train_header, train, arms)
    test_outcomes = arm_outcomes(test_header, test, arms)
    report(
        "routing_families",
        arm_table(train_outcomes, [a.name for a in arms]),
        title="Training set: each arm's accuracy per family",
        results=args.results,
    )
    inputs = CurveInputs(
        arms=arms,
        train=train_outcomes,
        test=test_outcomes,
        test_records=test,
        test_items={i.id: i for i in test_items},
        arm_router=trained["arm_router"],
        model_router=trained["model_router"],
        cost=args.cost,
        samples=int(test_header["strategy"]["n"]),
    )
    rows, comparisons, summary, details = curve_report(
        inputs, args.results / "routing.png", args.bootstrap
    )
    details.update(
        arm_router_val=trained["arm_metrics"].to_dict(),
        model_router_val=trained["model_metrics"].to_dict(),
    )
    details_path = args.results / "routing_details.json"
    details_path.write_text(json.dumps(details, indent=2, default=str) + "\n")
    summary.update(
        details=str(details_path),
        datasets=args.datasets,
        config=str(args.config),
        train_items=len(train_outcomes),
        test_items=len(test_outcomes),
        test_items_incomplete=len(test_items) - len(test_outcomes),
        excluded_overlapping_test_items=len(overlap),
        arm_router=str(args.results / "routers" / "arms"),
        constant_arms=trained["arm_metrics"].constant_confidence,
        constant_models=trained["model_metrics"].constant_confidence,
    )
    report(
        "routing",
        rows,
        summary=json.loads(json.dumps(summary, default=str)),
        comparisons=comparisons,
        title=f"Routing over arms on {len(test_outcomes)} held-out queries "
        f"({', '.join(args.datasets)}; cost = {args.cost})",
        results=args.results,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--config", type=Path, default=Path("examples/routing_agent/compute_aware_vllm.yaml")
    )
    parser.add_argument("--datasets", nargs="+", default=DEFAULT_DATASETS)
    parser.add_argument("--train-limit", type=int, default=60, help="items per data set")
    parser.add_argument("--test-limit", type=int, default=40, help="items per data set")
    parser.add_argument("--train-seed", type=int, default=100)
    parser.add_argument("--test-seed", type=int, default=200)
    parser.add_argument("--sample-seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument(
        "--calibration-folds",
        type=int,
        default=5,
        help="cross-fit the routers' calibration over K folds (0: a held-out 20%% split)",
    )
    parser.add_argument("--cost", choices=("seconds", "tokens"), default="seconds")
    parser.add_argument("--bootstrap", type=int, default=1000, help="resamples of test items")
    parser.add_argument("--concurrency", type=int, default=16, help="pairs in flight")
    parser.add_argument("--results", type=Path, default=RESULTS, help="output folder")
    parser.add_argument("--no-collect", action="store_true", help="only what run files hold")
    parser.add_argument("--retry-failed", action="store_true", help="rerun failed pairs")
    parser.add_argument(
        "--allow-mixed", action="store_true", help="resume run files written by other code"
    )
    parser.add_argument("--probe", action="store_true", help="only measure disagreement")
    parser.add_argument("--probe-limit", type=int, default=4, help="items per data set")
    args = parser.parse_args()
    asyncio.run(probe(args) if args.probe else run(args))


if __name__ == "__main__":
    main()
