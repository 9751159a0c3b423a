"""Latent reasoning on held-out GSM-Symbolic items: the base model, the text-CoT
fine-tune, Token Assorted (latent tokens) and continuous thoughts (CODI), all greedy.

The models are those ``system2 latent`` trained under ``--pipeline`` (``chains``,
``vqvae``, ``finetune``, ``codi``); the base model is the one they were tuned from. Each
arm answers the same items through the normal seam (``Orchestrator``, greedy), the
continuous-thought model with its k thoughts on every request (``ThoughtBudget``; k from
the codi step). Run files are resumable (``results/runs/latent_<arm>.jsonl``).

Per arm: accuracy with its 95% Wilson interval, trace length (generated positions: text
tokens + latent ids + thought steps), text and latent tokens, seconds; every arm against
the text-CoT fine-tune on the same items (fixed, broken, exact McNemar p); and the goal of
the issue: at least 15% shorter traces than text-CoT at an accuracy not significantly
below it. The training budget (examples, epochs, steps, CPU-hours per step) comes from the
pipeline's step markers. Evaluation items come from seeds >= 1000 (training uses seeds
below); items whose question is also a training chain's are dropped and counted.

Run: python -m benchmarks.latent --pipeline runs/latent [--limit 200] [--seed 1000]
     [--only base text_cot] [--from-runs]; a smoke run: --limit 3 --max-tokens 64
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS, Comparison, accuracy_ci, item_correctness, report
from orchestrator import GreedyConfig, Orchestrator
from orchestrator.types import Answer, Query
from policies import FixedPolicy
from system2.evaluation import EvalItem, load_dataset, read_records, run_eval
from system2.evaluation.runner import eval_record
from system2.evaluation.stats import SIGNIFICANCE_LEVEL, mcnemar_exact_p
from system2.pipelines.latent import EVAL_SEEDS_FROM, PipelineLayout, read_chains, read_step
from workers.base import Worker
from workers.latent import ThoughtBudget
from workers.transformers_worker import TransformersWorker

ARMS = ("base", "text_cot", "token_assorted", "continuous")
BASELINE = "text_cot"
GOAL_SHORTER = 0.15


def run_file(arm: str, results: Path = RESULTS) -> Path:
    return results / "runs" / f"latent_{arm}.jsonl"


def arm_models(pipeline: Path) -> dict[str, tuple[str, int]]:
    """Each arm's checkpoint and continuous thoughts, from the pipeline's step markers."""
    layout = PipelineLayout(pipeline)
    text = read_step(layout.finetune("text"))
    if text is None:
        raise SystemExit(f"{layout.finetune('text')}: no finished text-CoT fine-tune")
    codi = read_step(layout.codi)
    models = {
        "base": (str(text.config["base_model"]), 0),
        "text_cot": (str(layout.finetune("text")), 0),
        "token_assorted": (str(layout.finetune("latent")), 0),
        "continuous": (str(layout.codi), int(codi.config["thoughts"]) if codi else 0),
    }
    if codi is None:
        del models["continuous"]
    if read_step(layout.finetune("latent")) is None:
        del models["token_assorted"]
    return models


def held_out_items(args: argparse.Namespace) -> tuple[list[EvalItem], int]:
    """The evaluation items, less those whose question is a training chain's; and how many
    were dropped."""
    if args.seed < EVAL_SEEDS_FROM:
        raise SystemExit(f"--seed must be >= {EVAL_SEEDS_FROM} (training uses the seeds below)")
    items = load_dataset("gsm_symbolic", limit=args.limit, seed=args.seed)
    chains = PipelineLayout(args.pipeline).chains
    seen = {r["question"] for r in read_chains(chains)[1].values()} if chains.exists() else set()
    kept = [i for i in items if i.query.text not in seen]
    return kept, len(items) - len(kept)


def add_wall_time(path: Path, seconds: float) -> float:
    """Accumulate an arm's wall time across resumed invocations (sidecar JSON)."""
    sidecar = path.with_suffix(".wall.json")
    total = json.loads(sidecar.read_text())["wall_s"] if sidecar.exists() else 0.0
    if seconds:
        total += seconds
        sidecar.write_text(json.dumps({"wall_s": total}) + "\n")
    return float(total)


async def run_arm(
    arm: str, model: str, thoughts: int, items: list[EvalItem], args: argparse.Namespace
) -> None:
    """Answer every item with one arm's model into its run file (resumable; an arm whose
    file already holds every item loads no model)."""
    out = run_file(arm, args.results)
    run_config = {
        "arm": arm,
        "model": model,
        "thoughts": thoughts,
        "dataset": "gsm_symbolic",
        "limit": args.limit,
        "seed": args.seed,
        "max_tokens": args.max_tokens,
    }
    if out.exists():
        header, done = read_records(out)
        same = header is not None and all(header.get(k) == v for k, v in run_config.items())
        if same and all(item.id in done for item in items):
            return
    worker: Worker = TransformersWorker.load(model, model_name=arm, threads=args.threads)
    if thoughts:
        worker = ThoughtBudget(worker, thoughts)
    orch = Orchestrator(
        {arm: worker}, FixedPolicy((arm,), GreedyConfig(max_tokens=args.max_tokens))
    )
    latent: dict[str, int] = {}

    async def answer(query: Query) -> Answer:
        result = await orch.answer(query)
        latent[query.id] = result.usage.latent_tokens
        return result

    async def record(item: EvalItem) -> dict[str, Any]:
        done = await eval_record(item, answer)
        done["latent_tokens"] = latent.pop(item.id, 0)
        return done

    started = time.perf_counter()
    try:
        await run_eval(
            items, None, out, run_config=run_config, record_fn=record, concurrency=args.concurrency
        )
    finally:
        add_wall_time(out, time.perf_counter() - started)
        await worker.close()


def arm_row(arm: str, path: Path, text_trace: float | None) -> dict[str, Any]:
    """One arm's row from its run file."""
    header, records = read_records(path)
    rows = list(records.values())
    n = len(rows)
    trace = sum(int(r["completion_tokens"]) for r in rows) / n if n else 0.0
    latent = sum(int(r.get("latent_tokens", 0)) for r in rows) / n if n else 0.0
    return {
        "arm": arm,
        "items": n,
        "accuracy": sum(bool(r["correct"]) for r in rows) / n if n else 0.0,
        "accuracy_ci": accuracy_ci(item_correctness(path)),
        "trace_tokens_mean": trace,
        "text_tokens_mean": trace - latent,
        "latent_tokens_mean": latent,
        "shorter_than_text_cot": 1.0 - trace / text_trace if text_trace else None,
        "query_s_mean": sum(float(r["seconds"]) for r in rows) / n if n else 0.0,
        "run_wall_s": add_wall_time(path, 0.0),
        "failures": sum(1 for r in rows if r["status"] == "failed"),
        "thoughts": (header or {}).get("thoughts", 0),
        "model": (header or {}).get("model"),
    }


def build_rows(arms: list[str], results: Path) -> tuple[list[dict[str, Any]], list[Comparison]]:
    """The rows of the arms with run files, and each against text-CoT."""
    present = [a for a in arms if run_file(a, results).exists()]
    text_trace = None
    if BASELINE in present:
        text_trace = arm_row(BASELINE, run_file(BASELINE, results), None)["trace_tokens_mean"]
    rows = [arm_row(a, run_file(a, results), text_trace) for a in present]
    comparisons = []
    if BASELINE in present:
        baseline = (BASELINE, item_correctness(run_file(BASELINE, results)))
        comparisons = [
            Comparison.of("gsm_symbolic", baseline, (a, item_correctness(run_file(a, results))))
            for a in present
            if a != BASELINE
        ]
    return rows, comparisons


def goal(rows: list[dict[str, Any]], comparisons: list[Comparison]) -> dict[str, str]:
    """Per latent arm: whether its traces are >= 15% shorter than text-CoT's at an accuracy
    not significantly below (exact McNemar p >= 0.05, or not lower).

    Two cases cannot meet it whatever the numbers say: a Token Assorted arm that generated
    no latent id (its traces are shorter because it skips reasoning, not because it reasons
    in latent form); and where traces are short enough but text-CoT's accuracy is so low
    that even an arm answering every item wrong would not be significantly below it, the
    test cannot tell ("cannot tell")."""
    verdicts = {}
    by_arm = {c.method: c.result for c in comparisons}
    for row in rows:
        result = by_arm.get(row["arm"])
        if row["arm"] not in ("token_assorted", "continuous") or result is None:
            continue
        shorter = row["shorter_than_text_cot"] or 0.0
        below = result.difference < 0 and result.significant
        figures = (
            f"{shorter:.1%} shorter, accuracy {result.difference:+.1%} (p={result.p_value:.3g})"
        )
        if row["arm"] == "token_assorted" and row["latent_tokens_mean"] == 0:
            verdicts[row["arm"]] = f"not met: no latent id generated; {figures}"
        elif shorter < GOAL_SHORTER:
            verdicts[row["arm"]] = f"not met: {figures}"
        elif mcnemar_exact_p(0, result.correct_a) >= SIGNIFICANCE_LEVEL:
            verdicts[row["arm"]] = (
                f"cannot tell: text-CoT answers {result.correct_a} of {result.n} items, so "
                f"even 0 correct would not be significantly below it; {figures}"
            )
        else:
            verdicts[row["arm"]] = f"{'not met' if below else 'met'}: {figures}"
    return verdicts


async def run(args: argparse.Namespace) -> None:
    arms = [a for a in ARMS if not args.only or a in args.only]
    dropped = evaluated = None
    if not args.from_runs:
        models = arm_models(args.pipeline)
        items, dropped = held_out_items(args)
        evaluated = len(items)
        for arm in arms:
            if arm in models:
                await run_arm(arm, *models[arm], items, args)
    rows, comparisons = build_rows(arms, args.results)
    previous = args.results / "latent.json"
    machine = None
    if args.from_runs and previous.exists():
        machine = json.loads(previous.read_text())["machine"]
    report(
        "latent",
        rows,
        comparisons=comparisons,
        results=args.results,
        machine=machine,
        summary={
            "pipeline": str(args.pipeline),
            "items": args.limit,
            "evaluated_items": evaluated,
            "seed": args.seed,
            "dropped_as_training_questions": dropped,
            "goal": goal(rows, comparisons),
            "training_budget": PipelineLayout(args.pipeline).budget(),
        },
        title=f"GSM-Symbolic, latent reasoning, {evaluated or args.limit} items, seed {args.seed}",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pipeline", type=Path, default=Path("runs/latent"))
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--seed", type=int, default=EVAL_SEEDS_FROM)
    parser.add_argument("--max-tokens", type=int, default=384)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=8, help="items in flight at once")
    parser.add_argument("--only", nargs="*", choices=ARMS, help="run only these arms")
    parser.add_argument("--results", type=Path, default=RESULTS, help=argparse.SUPPRESS)
    parser.add_argument(
        "--from-runs", action="store_true", help="rebuild the outputs from the stored run files"
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
