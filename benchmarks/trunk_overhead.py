"""What shared-trunk guidance costs: plain decoding vs trunk-head-guided decoding of the
same prompts on the same engine, per engine (the embedded transformers model, an
in-process vLLM engine).

Per engine three workers of the generator stay loaded side by side: ``plain`` (no
verifier), and one with the trunk head attached (``--verifier DIR``, written by ``system2
verifier train --kind trunk_head``), which serves the same prompts once without guidance
(``unguided``: what merely attaching the head costs) and once with it (``guided``). The
three take turns for ``--repeats`` rounds, each a batch of ``--prompts`` GSM-Symbolic
questions sent together, greedy, at most ``--max-tokens`` tokens; one row per batch size
(``--prompts 8,16``: the head's per-step work grows with the rows in flight). Guidance changes which
tokens come out and so how many, so the cost is compared per generated token: the ratio
of a mode's wall seconds per token to ``plain``'s, over all rounds (the goal of issue 21:
guided <= 1.15x). The head's own processor seconds come from the worker's guidance stats
where the engine reports them. Table and JSON: ``results/trunk_overhead.json``.

Run: python -m benchmarks.trunk_overhead --verifier runs/trunk [--engines transformers,vllm]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS, machine_info, report
from orchestrator.prompts import build_prompt
from system2.evaluation import EvalItem, load_dataset
from workers.base import GenerateRequest, Guidance, SamplingParams, Worker
from workers.config import (
    TransformersWorkerConfig,
    VerifierConfig,
    VLLMWorkerConfig,
    WorkerConfig,
    build_worker,
)
from workers.verifier.trunk_head import read_meta
from workers.verifier.trunk_kinds import saved_verifier_kind

__all__ = ["ModeTiming", "main", "per_token_ratio"]

MODES = ("plain", "unguided", "guided")


@dataclass
class ModeTiming:
    """One mode's rounds summed: wall seconds and generated tokens."""

    seconds: float = 0.0
    tokens: int = 0

    @property
    def seconds_per_token(self) -> float:
        if self.tokens == 0:
            raise ValueError("no tokens generated: nothing to take a per-token cost over")
        return self.seconds / self.tokens


def per_token_ratio(mode: ModeTiming, plain: ModeTiming) -> float:
    """``mode``'s wall seconds per generated token over ``plain``'s."""
    return mode.seconds_per_token / plain.seconds_per_token


def _config(engine: str, model: str, args: argparse.Namespace, head: Path | None) -> WorkerConfig:
    verifier = VerifierConfig(path=str(head)) if head is not None else None
    if engine == "vllm":
        return VLLMWorkerConfig(
            model=model,
            max_model_len=args.max_model_len,
            kv_cache_gib=args.kv_cache_gib,
            verifier=verifier,
        )
    return TransformersWorkerConfig(model=model, threads=args.threads, verifier=verifier)


async def _round(worker: Worker, requests: Sequence[GenerateRequest]) -> ModeTiming:
    started = time.perf_counter()
    results = await asyncio.gather(*(worker.generate(r) for r in requests))
    tokens = sum(len(c.token_ids) for res in results for c in res.completions)
    return ModeTiming(time.perf_counter() - started, tokens)


def _requests(
    items: Sequence[EvalItem], max_tokens: int, guidance: Guidance | None
) -> list[GenerateRequest]:
    params = SamplingParams(max_tokens=max_tokens, guidance=guidance)
    return [
        GenerateRequest(prompt=build_prompt(item.query), params=params, request_id=item.id)
        for item in items
    ]


def _head_seconds(worker: Worker) -> float | None:
    stats = worker.guidance_stats
    return None if stats is None else stats.seconds


async def measure_engine(engine: str, model: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    """One engine's rows, one per batch size of ``args.prompts``: the three modes' totals,
    per-token ratios to plain and the head's processor share of guided's wall time."""
    plain_worker = build_worker("plain", _config(engine, model, args, None))
    head_worker = build_worker("trunk", _config(engine, model, args, args.verifier))
    guidance = Guidance(beta=args.beta, alpha=args.alpha, top_k=args.top_k)
    items = load_dataset("gsm_symbolic", limit=max(args.prompts), seed=args.seed)
    plain = _requests(items, args.max_tokens, None)
    plan = {
        "plain": (plain_worker, plain),
        "unguided": (head_worker, plain),
        "guided": (head_worker, _requests(items, args.max_tokens, guidance)),
    }
    rows: list[dict[str, Any]] = []
    try:
        for worker, requests in plan.values():  # warm-up round, not counted
            await _round(worker, requests[:2])
        for size in args.prompts:
            totals = {mode: ModeTiming() for mode in MODES}
            head_before = _head_seconds(head_worker)  # a float: the stats object is live
            for _ in range(args.repeats):
                for mode, (worker, requests) in plan.items():
                    timing = await _round(worker, requests[:size])
                    totals[mode].seconds += timing.seconds
                    totals[mode].tokens += timing.tokens
            head_after = _head_seconds(head_worker)
            head = None if head_before is None or head_after is None else head_after - head_before
            rows.append(_row(engine, size, totals, head, args.goal))
    finally:
        await plain_worker.close()
        await head_worker.close()
    return rows


def _row(
    engine: str, size: int, totals: dict[str, ModeTiming], head_s: float | None, goal: float
) -> dict[str, Any]:
    row: dict[str, Any] = {"engine": engine, "prompts": size}
    for mode in MODES:
        row[f"{mode}_s"] = round(totals[mode].seconds, 2)
        row[f"{mode}_tokens"] = totals[mode].tokens
    row["unguided_x"] = round(per_token_ratio(totals["unguided"], totals["plain"]), 3)
    row["guided_x"] = round(per_token_ratio(totals["guided"], totals["plain"]), 3)
    row["head_share"] = round(head_s / totals["guided"].seconds, 4) if head_s is not None else None
    row["goal"] = "met" if row["guided_x"] <= goal else "not met"
    return row


async def run(args: argparse.Namespace) -> None:
    if saved_verifier_kind(args.verifier) != "trunk_head":
        raise SystemExit(f"{args.verifier} is not a trunk_head verifier")
    model = args.model or str(read_meta(args.verifier)["base_model"])
    rows = [row for e in args.engines.split(",") for row in await measure_engine(e, model, args)]
    report(
        "trunk_overhead",
        rows,
        summary={
            "model": model,
            "verifier": str(args.verifier),
            "prompts": args.prompts,
            "max_tokens": args.max_tokens,
            "repeats": args.repeats,
            "guidance": {"beta": args.beta, "alpha": args.alpha, "top_k": args.top_k},
            "goal": f"guided_x <= {args.goal} (wall seconds per generated token over plain's)",
            "machine": machine_info(),
        },
        title=f"Shared-trunk guidance overhead, {model}",
        results=RESULTS,
    )


def _sizes(text: str) -> list[int]:
    sizes = [int(part) for part in text.split(",") if part.strip()]
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected sizes >= 1 such as 8,16, got {text!r}")
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--verifier", type=Path, required=True, help="trunk_head directory")
    parser.add_argument("--model", help="generator (default: the head's base model)")
    parser.add_argument("--engines", default="transformers,vllm")
    parser.add_argument(
        "--prompts",
        type=_sizes,
        default=[8, 16],
        help="questions per round (in flight at once), comma-separated: one row per size",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the questions")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--beta", type=float, default=0.25)
    parser.add_argument("--alpha", type=float, default=0.1)
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--goal", type=float, default=1.15)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (transformers)")
    parser.add_argument("--max-model-len", type=int, default=2048, help="vllm")
    parser.add_argument("--kv-cache-gib", type=float, default=1.0, help="vllm, per engine")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
