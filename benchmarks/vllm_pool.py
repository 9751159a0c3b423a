"""vLLM behind the worker seam: pool overhead, and backends compared on one model.

(a) Pool overhead: the same generation requests, all submitted at once, sent directly to a
    vLLM server by a minimal httpx client (one ``/v1/completions`` POST each, the body
    ``OpenAIWorker`` sends) and through a ``WorkerPool`` of one ``OpenAIWorker`` replica on
    that server; likewise ``VLLMWorker`` called directly vs through a one-replica pool.
    The ratio pool/direct of output tokens/s is the figure (target: at least 0.95).
(b) Backends: output tokens/s at each concurrency level (default 1, 8, 32 requests in
    flight) for ``TransformersWorker``, ``VLLMWorker`` (in-process engine) and
    ``OpenAIWorker`` on a local vLLM server, all greedy on the same model and prompts.

Only one engine runs at a time (server, then in-process engine, then transformers). The
engines run with ``enforce_eager`` unless ``--compile`` (slower start, faster decode).

Run: python -m benchmarks.vllm_pool [--model smollm2-135m-instruct] [--requests 64]
     [--concurrency 1,8,32] [--max-tokens 64]
Smoke run: python -m benchmarks.vllm_pool --requests 4 --concurrency 1 --max-tokens 8
     --out vllm_pool_smoke
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httpx

from benchmarks.common import report
from workers.base import GenerateRequest, GenerateResult, SamplingParams, Worker
from workers.openai.worker import OpenAIWorker
from workers.pool import WorkerPool

SERVED = "bench"
TOPICS = (
    "a lighthouse keeper who finds a message in a bottle",
    "a robot learning to paint",
    "the last tree in a desert city",
    "a cat that can read minds",
    "two rival bakers in a small town",
    "a map that redraws itself every night",
    "a musician who can only play one note",
    "a train that never stops",
)

Row = dict[str, Any]


def prompts(count: int) -> list[str]:
    """Distinct text prompts (no shared prefix beyond the instruction)."""
    return [
        f"Story {i}. Write a short story about {TOPICS[i % len(TOPICS)]}.\n\nOnce upon a time,"
        for i in range(count)
    ]


def requests(count: int, max_tokens: int) -> list[GenerateRequest]:
    params = SamplingParams(max_tokens=max_tokens)
    return [GenerateRequest(prompt=p, params=params) for p in prompts(count)]


async def timed(
    calls: Sequence[Callable[[], Awaitable[int]]], concurrency: int
) -> tuple[int, float]:
    """Run the calls with at most ``concurrency`` in flight; (output tokens, wall seconds)."""
    gate = asyncio.Semaphore(concurrency)

    async def one(call: Callable[[], Awaitable[int]]) -> int:
        async with gate:
            return await call()

    started = time.perf_counter()
    tokens = await asyncio.gather(*(one(c) for c in calls))
    return sum(tokens), time.perf_counter() - started


def row(backend: str, mode: str, concurrency: int, count: int, tokens: int, seconds: float) -> Row:
    return {
        "backend": backend,
        "mode": mode,
        "concurrency": concurrency,
        "requests": count,
        "tokens": tokens,
        "seconds": round(seconds, 3),
        "tokens_per_s": round(tokens / seconds, 2) if seconds > 0 else 0.0,
    }


def tokens_of(call: Callable[[], Awaitable[GenerateResult]]) -> Callable[[], Awaitable[int]]:
    async def run() -> int:
        return (await call()).usage.completion_tokens

    return run


def seam_calls(
    worker: Worker, batch: Sequence[GenerateRequest]
) -> list[Callable[[], Awaitable[int]]]:
    return [tokens_of(functools.partial(worker.generate, r)) for r in batch]


async def pool_vs_direct_http(url: str, count: int, max_tokens: int) -> list[Row]:
    """(a) over HTTP: a minimal httpx client vs a one-replica pool, same requests."""
    batch = prompts(count)
    async with httpx.AsyncClient(timeout=httpx.Timeout(600.0)) as client:

        def direct(prompt: str) -> Callable[[], Awaitable[int]]:
            async def post() -> int:
                body = {
                    "model": SERVED,
                    "prompt": prompt,
                    "max_tokens": max_tokens,
                    "temperature": 0.0,
                    "top_p": 1.0,
                    "n": 1,
                    "logprobs": 0,
                    "return_token_ids": True,
                }
                response = await client.post(f"{url}/v1/completions", json=body)
                response.raise_for_status()
                tokens: int = response.json()["usage"]["completion_tokens"]
                return tokens

            return post

        tokens, seconds = await timed([direct(p) for p in batch], count)
    rows = [row("vllm-http", "direct (httpx client)", count, count, tokens, seconds)]
    pool = WorkerPool(SERVED, [OpenAIWorker(url, model=SERVED, timeout_s=600.0)])
    tokens, seconds = await timed(seam_calls(pool, requests(count, max_tokens)), count)
    rows.append(row("vllm-http", "WorkerPool(OpenAIWorker)", count, count, tokens, seconds))
    await pool.close()
    return rows


async def pool_vs_direct_worker(
    worker: Worker, backend: str, count: int, max_tokens: int
) -> list[Row]:
    """(a) in-process: the worker called directly vs through a one-replica pool."""
    batch = requests(count, max_tokens)
    tokens, seconds = await timed(seam_calls(worker, batch), count)
    rows = [row(backend, "direct (worker)", count, count, tokens, seconds)]
    pool = WorkerPool(backend, [worker], drain_timeout_s=0)
    tokens, seconds = await timed(seam_calls(pool, batch), count)
    rows.append(row(backend, "WorkerPool(worker)", count, count, tokens, seconds))
    return rows  # the pool is not closed: it would close the worker, used again below


async def levels(
    worker: Worker, backend: str, concurrency: Sequence[int], count: int, max_tokens: int
) -> list[Row]:
    """(b) output tokens/s with ``c`` requests in flight, for each level c."""
    await worker.generate(requests(1, 4)[0])  # warm-up
    rows = []
    for c in concurrency:
        n = min(count, max(4 * c, 8)) if count >= c else c
        tokens, seconds = await timed(seam_calls(worker, requests(n, max_tokens)), c)
        rows.append(row(backend, "worker", c, n, tokens, seconds))
    return rows


def ratio(rows: Sequence[Row], backend: str) -> float | None:
    modes = {r["mode"]: r["tokens_per_s"] for r in rows if r["backend"] == backend}
    direct = next((v for k, v in modes.items() if k.startswith("direct")), None)
    pooled = next((v for k, v in modes.items() if k.startswith("WorkerPool")), None)
    return round(pooled / direct, 3) if direct and pooled else None


def run(args: argparse.Namespace) -> None:
    from workers.transformers_worker import TransformersWorker
    from workers.vllm.server import VLLMServer
    from workers.vllm.worker import VLLMWorker

    concurrency = [int(c) for c in args.concurrency.split(",") if c]
    eager = not args.compile
    rows: list[Row] = []

    # 1. A local vLLM server: (a) over HTTP, then (b) through OpenAIWorker.
    with VLLMServer(
        args.model,
        served_name=SERVED,
        max_model_len=args.max_model_len,
        kv_cache_gib=args.kv_cache_gib,
        enforce_eager=eager,
    ) as server:
        worker = OpenAIWorker(server.url, model=SERVED, timeout_s=600.0)

        async def http_part() -> None:
            await worker.generate(requests(1, 4)[0])  # warm-up
            rows.extend(await pool_vs_direct_http(server.url, args.requests, args.max_tokens))
            rows.extend(
                await levels(worker, "vllm-http", concurrency, args.requests, args.max_tokens)
            )
            await worker.close()

        asyncio.run(http_part())

    # 2. The in-process engine: (a) direct vs pool, then (b).
    engine = VLLMWorker.load(
        args.model,
        model_name=SERVED,
        max_model_len=args.max_model_len,
        kv_cache_gib=args.kv_cache_gib,
        enforce_eager=eager,
    )

    async def engine_part() -> None:
        await engine.generate(requests(1, 4)[0])  # warm-up
        rows.extend(
            await pool_vs_direct_worker(engine, "vllm-inprocess", args.requests, args.max_tokens)
        )
        rows.extend(
            await levels(engine, "vllm-inprocess", concurrency, args.requests, args.max_tokens)
        )
        await engine.close()

    asyncio.run(engine_part())

    # 3. transformers on the same weights: (b).
    if not args.skip_transformers:
        hf = TransformersWorker.load(args.model, threads=os.cpu_count())

        async def hf_part() -> None:
            rows.extend(
                await levels(hf, "transformers", concurrency, args.requests, args.max_tokens)
            )
            await hf.close()

        asyncio.run(hf_part())

    summary = {
        "model": args.model,
        "max_tokens": args.max_tokens,
        "enforce_eager": eager,
        "pool_over_direct_http": ratio(rows, "vllm-http"),
        "pool_over_direct_inprocess": ratio(rows, "vllm-inprocess"),
    }
    report(args.out, rows, summary=summary, title="vLLM workers and pools")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--requests", type=int, default=64, help="requests in part (a)")
    parser.add_argument("--concurrency", default="1,8,32", help="levels for part (b)")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--max-model-len", type=int, default=1024)
    parser.add_argument("--kv-cache-gib", type=float, default=1.0)
    parser.add_argument("--compile", action="store_true", help="no enforce_eager")
    parser.add_argument("--skip-transformers", action="store_true")
    parser.add_argument("--out", default="vllm_pool", help="results/<out>.json")
    run(parser.parse_args())


if __name__ == "__main__":  # vLLM's engine processes re-import the main module
    main()
