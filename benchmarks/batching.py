"""Batching: n samples in one batched call vs the same n samples as sequential calls.

Both sides draw the same seeded samples (sample i uses seed + i) with ``max_tokens`` fixed
and EOS ignored by a long generation budget, so they generate comparable token counts.

Run: python -m benchmarks.batching [--model qwen2.5-coder-0.5b-instruct] [--n 8]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from benchmarks.common import report
from workers.base import ChatMessage, GenerateRequest, SamplingParams
from workers.transformers_worker import TransformersWorker

PROMPT = (
    ChatMessage(
        role="user",
        content="Write a short story about a lighthouse keeper who finds a message in a bottle.",
    ),
)


async def measure(model: str, n: int, max_tokens: int, threads: int) -> list[dict[str, object]]:
    worker = TransformersWorker.load(model, threads=threads)
    params = SamplingParams(n=1, temperature=0.8, max_tokens=max_tokens, seed=0)
    # Warm-up: the first forward passes allocate and are slower.
    await worker.generate(
        GenerateRequest(prompt=PROMPT, params=params.model_copy(update={"max_tokens": 8}))
    )

    started = time.perf_counter()
    sequential = [
        await worker.generate(
            GenerateRequest(prompt=PROMPT, params=params.model_copy(update={"seed": i}))
        )
        for i in range(n)
    ]
    sequential_s = time.perf_counter() - started
    sequential_tokens = sum(r.usage.completion_tokens for r in sequential)

    started = time.perf_counter()
    batched = await worker.generate(
        GenerateRequest(prompt=PROMPT, params=params.model_copy(update={"n": n}))
    )
    batched_s = time.perf_counter() - started
    await worker.close()
    return [
        {
            "mode": f"{n} sequential calls",
            "tokens": sequential_tokens,
            "seconds": sequential_s,
            "tokens_per_s": sequential_tokens / sequential_s,
        },
        {
            "mode": f"one call, n={n}",
            "tokens": batched.usage.completion_tokens,
            "seconds": batched_s,
            "tokens_per_s": batched.usage.completion_tokens / batched_s,
        },
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    rows = asyncio.run(measure(args.model, args.n, args.max_tokens, args.threads))
    ratio = float(rows[1]["tokens_per_s"]) / float(rows[0]["tokens_per_s"])  # type: ignore[arg-type]
    report(
        "batching",
        rows,
        summary={"model": args.model, "batched_over_sequential_tokens_per_s": ratio},
        title=f"batching, {args.model}",
    )


if __name__ == "__main__":
    main()
