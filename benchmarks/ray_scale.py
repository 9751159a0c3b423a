"""The cost of serving a pool from Ray Serve, and what N replicas on N GPUs would serve.

(a) The same requests (default 128, greedy, all distinct) through two pools of the same
    engines on the same CPUs: an in-process ``WorkerPool`` of ``--replicas`` embedded
    transformers models (``kind: pool``), and the same YAML moved onto Ray (``kind: ray``,
    ``--replicas`` Serve replicas of one CPU each, on a local cluster of that many CPUs),
    in alternating rounds (the machine's load drifts; both pools see the same drift).
    Throughput (requests/s, output tokens/s), their ratio ray/in-process (the cost of the
    hop; goal at least 0.9), and p50/p99 request latency.
(b) The hop alone, with a scripted engine that does no work: round-trip latency of calls
    made one at a time, in-process vs through the handle (the difference is the
    per-request overhead Ray adds), and the most calls per second one driver pushes
    through a handle with ``--hop-concurrency`` in flight (with the driver's CPU seconds
    per call), which is where the driver becomes the bottleneck.
(c) On paper, from (a) and (b): N replicas on N GPUs serve min(N x E, D) requests/s, E a
    replica's engine throughput and D one driver's limit (callers needed: N x E / D, e.g.
    ingress replicas of ``serve --ray`` or actors of ``eval --ray``, each calling the
    handles itself); the added latency per request is the hop's. E is each of
    ``--gpu-engine-rps`` and, for comparison, the CPU replica measured in (a). The default
    GPU rates were measured on one H200 (2026-11-30): the same engine (transformers, bf16,
    ``generate``) on a model of SmolLM2-135M's shape with random weights, 48-token prompts,
    32 new tokens: 88 requests/s at batch 64, 506 at batch 512 (its decode steps cost the
    same at any batch up to 512: launch-bound).

Run: python -m benchmarks.ray_scale [--requests 128] [--max-tokens 32] [--replicas 2]
Smoke run: python -m benchmarks.ray_scale --requests 8 --max-tokens 4 --hop-requests 20
     --out ray_scale_smoke
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks.common import report
from system2.assembly import build_worker
from system2.config import ModelConfig, parse_config
from system2.ray.cluster import connect
from system2.ray.config import RayClusterConfig
from workers.base import ChatMessage, GenerateRequest, SamplingParams, Worker

Row = dict[str, Any]

PAPER_REPLICAS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


def requests(count: int, max_tokens: int) -> list[GenerateRequest]:
    """Distinct chat questions, greedy, at most ``max_tokens`` each (the instruct model
    answers at length: most requests run to ``max_tokens``)."""
    params = SamplingParams(max_tokens=max_tokens)
    return [
        GenerateRequest(prompt=(ChatMessage(role="user", content=question(i)),), params=params)
        for i in range(count)
    ]


def question(i: int) -> str:
    return f"What is {i} times {i % 7 + 2}? Explain step by step."


async def measured(
    worker: Worker, batch: Sequence[GenerateRequest], concurrency: int
) -> tuple[list[float], int, float, float]:
    """Run ``batch`` with ``concurrency`` in flight: (latencies, output tokens, wall seconds,
    this process's CPU seconds)."""
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []

    async def one(request: GenerateRequest) -> int:
        async with gate:
            started = time.perf_counter()
            result = await worker.generate(request)
            latencies.append(time.perf_counter() - started)
            return result.usage.completion_tokens

    cpu, wall = time.process_time(), time.perf_counter()
    tokens = await asyncio.gather(*(one(r) for r in batch))
    return latencies, sum(tokens), time.perf_counter() - wall, time.process_time() - cpu


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def row(pool: str, latencies: list[float], tokens: int, wall: float, cpu: float) -> Row:
    return {
        "pool": pool,
        "requests": len(latencies),
        "output_tokens": tokens,
        "seconds": wall,
        "requests_per_s": len(latencies) / wall,
        "tokens_per_s": tokens / wall,
        "p50_ms": 1000 * percentile(latencies, 50),
        "p99_ms": 1000 * percentile(latencies, 99),
        "driver_cpu_ms_per_request": 1000 * cpu / len(latencies),
    }


def model_configs(args: argparse.Namespace) -> tuple[dict[str, ModelConfig], RayClusterConfig]:
    """The engine as an in-process pool and as the same YAML on Ray (and the no-op engine
    both ways, for the hop)."""
    engine = {"kind": "transformers", "model": args.model, "threads": args.threads}
    noop = {"kind": "scripted", "responses": ["ok"]}
    data = {
        "models": {
            "pool": {"kind": "pool", "replicas": [engine] * args.replicas},
            "ray": {
                "kind": "ray",
                "replica": engine,
                "num_replicas": args.replicas,
                "num_cpus": 1,
                # As the in-process pool balances (fewest in flight), no replica takes more.
                "max_ongoing_requests": math.ceil(args.concurrency / args.replicas),
            },
            "noop": noop,
            "noop_ray": {
                "kind": "ray",
                "replica": noop,
                "num_cpus": 0,
                "max_ongoing_requests": 1000,
            },
        },
        "policy": {"kind": "fixed", "models": ["pool"]},
        "ray": {"num_cpus": args.replicas, "object_store_mb": 256},
    }
    config = parse_config(data, source="ray_scale")
    return dict(config.models), config.ray


def children_cpu_seconds() -> float:
    """CPU seconds used so far by this process's descendants (the local Ray cluster)."""
    parents, ticks = {}, {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry)] = int(fields[1])
            ticks[int(entry)] = int(fields[11]) + int(fields[12])
    found, grew = {os.getpid()}, True
    while grew:
        children = {p for p, parent in parents.items() if parent in found} - found
        found, grew = found | children, bool(children)
    found.discard(os.getpid())
    return sum(ticks[p] for p in found) / os.sysconf("SC_CLK_TCK")


async def idle_cpu_cores(seconds: float) -> float:
    """Cores the local Ray cluster keeps busy while no request runs."""
    before, started = children_cpu_seconds(), time.perf_counter()
    await asyncio.sleep(seconds)
    return (children_cpu_seconds() - before) / (time.perf_counter() - started)


async def pools(args: argparse.Namespace) -> list[Row]:
    """(a): the same requests through the in-process pool and the Ray-served one, in
    ``--rounds`` alternating rounds (which pool goes first alternates too), so a change in
    the machine's load mid-run hits both alike; the Ray row also says how many cores the
    idle cluster keeps busy."""
    models, cluster = model_configs(args)
    batch = requests(args.requests, args.max_tokens)
    names = ("pool", "ray")
    workers: dict[str, Worker] = {}
    try:
        for name in names:
            workers[name] = await asyncio.to_thread(
                build_worker, name, models[name], cluster=cluster
            )
        idle = await idle_cpu_cores(10.0)
        for name in names:
            await measured(workers[name], requests(args.replicas * 2, 4), args.concurrency)
        runs: dict[str, list[tuple[list[float], int, float, float]]] = {n: [] for n in names}
        share = -(-len(batch) // args.rounds)
        for r in range(args.rounds):
            part = batch[r * share : (r + 1) * share]
            for name in names if r % 2 == 0 else names[::-1]:
                runs[name].append(await measured(workers[name], part, args.concurrency))
    finally:
        await asyncio.gather(*(w.close() for w in workers.values()))
    rows = []
    for name in names:
        done = runs[name]
        latencies = [s for run in done for s in run[0]]
        tokens = sum(run[1] for run in done)
        wall, cpu = sum(run[2] for run in done), sum(run[3] for run in done)
        result = row(f"{name} x{args.replicas}", latencies, tokens, wall, cpu)
        rows.append({**result, "idle_cluster_cores": idle if name == "ray" else 0.0})
    return rows


async def hop(args: argparse.Namespace) -> list[Row]:
    """(b): calls that do no work, one at a time and many at once, both ways."""
    models, cluster = model_configs(args)
    batch = requests(args.hop_requests, 1)
    rows = []
    for name in ("noop", "noop_ray"):
        worker = await asyncio.to_thread(build_worker, name, models[name], cluster=cluster)
        try:
            await measured(worker, batch[:10], 1)
            rows.append(row(f"{name} sequential", *await measured(worker, batch, 1)))
            rows.append(
                row(
                    f"{name} x{args.hop_concurrency}",
                    *await measured(worker, batch, args.hop_concurrency),
                )
            )
        finally:
            await worker.close()
    return rows


def paper(engine_rps: dict[str, float], driver_rps: float, hop_ms: float) -> list[Row]:
    """(c): served requests/s of N replicas, each ``engine_rps``, one driver at most
    ``driver_rps``."""
    rows = []
    for engine, rate in engine_rps.items():
        for n in PAPER_REPLICAS:
            ideal = n * rate
            served = min(ideal, driver_rps)
            rows.append(
                {
                    "engine": engine,
                    "replicas": n,
                    "ideal_rps": ideal,
                    "served_rps": served,
                    "efficiency": served / ideal,
                    "bound_by": "replicas" if ideal <= driver_rps else "driver",
                    "callers_needed": math.ceil(ideal / driver_rps),
                    "added_latency_ms": hop_ms,
                }
            )
    return rows


def print_rows(rows: Sequence[Row], title: str) -> None:
    table = Table(title=title)
    for column in rows[0]:
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(*(f"{v:,.4g}" if isinstance(v, float) else str(v) for v in r.values()))
    Console(width=None if sys.stdout.isatty() else 240).print(table)


def by_pool(rows: Sequence[Row], prefix: str) -> Row:
    return next(r for r in rows if r["pool"].startswith(prefix))


def run(args: argparse.Namespace) -> None:
    connect(model_configs(args)[1])  # on the main thread: Ray sets its signal handlers

    async def both() -> tuple[list[Row], list[Row]]:
        return await pools(args), await hop(args)

    measured_rows, hop_rows = asyncio.run(both())
    inproc, served = by_pool(measured_rows, "pool "), by_pool(measured_rows, "ray ")
    noop_seq, ray_seq = (
        by_pool(hop_rows, "noop sequential"),
        by_pool(hop_rows, "noop_ray sequential"),
    )
    ray_many = by_pool(hop_rows, f"noop_ray x{args.hop_concurrency}")
    hop_ms = ray_seq["p50_ms"] - noop_seq["p50_ms"]
    driver_rps = ray_many["requests_per_s"]
    cpu_replica_rps = served["requests_per_s"] / args.replicas
    gpu_rates = [float(r) for r in args.gpu_engine_rps.split(",")]
    engines = {f"gpu engine, {rate:g} rps": rate for rate in gpu_rates}
    engines[f"cpu replica here, {cpu_replica_rps:.3g} rps"] = cpu_replica_rps
    on_paper = paper(engines, driver_rps, hop_ms)
    summary = {
        "throughput_ratio_ray_vs_in_process": served["requests_per_s"] / inproc["requests_per_s"],
        "p50_ms_in_process": inproc["p50_ms"],
        "p50_ms_ray": served["p50_ms"],
        "p99_ms_in_process": inproc["p99_ms"],
        "p99_ms_ray": served["p99_ms"],
        "per_request_overhead_ms": hop_ms,
        "ray_cluster_idle_cores": served["idle_cluster_cores"],
        "driver_limit_rps": driver_rps,
        "driver_cpu_ms_per_request": ray_many["driver_cpu_ms_per_request"],
        "driver_saturates_at_gpu_replicas": {str(r): driver_rps / r for r in gpu_rates},
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
    }
    path = report(args.out, [*measured_rows, *hop_rows], summary=summary, title="in-process vs Ray")
    print_rows(on_paper, "on paper: N replicas on N GPUs, one driver (the JSON's 'paper')")
    payload = json.loads(path.read_text())
    path.write_text(json.dumps({**payload, "paper": on_paper}, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--requests", type=int, default=128)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--replicas", type=int, default=2, help="engines in each pool")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per engine")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight")
    parser.add_argument("--rounds", type=int, default=4, help="alternations of the two pools")
    parser.add_argument("--hop-requests", type=int, default=400)
    parser.add_argument("--hop-concurrency", type=int, default=64)
    parser.add_argument(
        "--gpu-engine-rps",
        default="88,506",
        help="one GPU engine's requests/s at this request shape, comma-separated (paper table)",
    )
    parser.add_argument("--out", default="ray_scale")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
