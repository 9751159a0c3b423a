"""The token verifier's cache under an engine's churn: rows finish, new rows join mid-batch.

A seeded schedule replays what a vLLM batch shows the verifier each step: ``--rows`` rows
decoding one token per step; a row that reaches its length finishes and a new row with a
fresh prompt takes its place; about a quarter of the rows have candidates to score (the
rest are |V_t| = 1 steps, which still extend the cache). The same schedule runs on a cache
that only grows (every new prompt pads every row, padding stays) and on the default cache
(rows far behind caught up on their own, padding compacted away); both must give the same
scores. Token ids are random: the cost does not depend on them, nor on the head's weights.

Run: python -m benchmarks.verifier_cache [--model qwen2.5-coder-0.5b-instruct] [--steps 120]
"""

from __future__ import annotations

import argparse
import random
import time
from dataclasses import dataclass
from typing import Any

import torch
from rich.progress import track

from benchmarks.common import report
from workers.verifier import TokenVerifier, VerifierCache, score_candidates


@dataclass(frozen=True, slots=True)
class Step:
    sequences: list[list[int]]
    candidates: list[list[int]]


def schedule(
    steps: int, rows: int, vocab: int, seed: int, prompt: tuple[int, int], length: tuple[int, int]
) -> list[Step]:
    """Each step's sequences and candidates (see the module doc)."""
    rng = random.Random(seed)

    def new_row() -> tuple[list[int], int]:
        tokens = [rng.randrange(100, vocab) for _ in range(rng.randint(*prompt))]
        return tokens, len(tokens) + rng.randint(*length)

    live = [new_row() for _ in range(rows)]
    # Stagger the first rows' ends so joins spread over the run.
    live = [(tokens, end - rng.randint(0, length[0])) for tokens, end in live]
    out = []
    for _ in range(steps):
        live = [row if len(row[0]) < row[1] else new_row() for row in live]
        for tokens, _end in live:
            tokens.append(rng.randrange(100, vocab))
        candidates = [
            [rng.randrange(100, vocab) for _ in range(rng.randint(2, 4))]
            if rng.random() < 0.25
            else []
            for _ in live
        ]
        out.append(Step([list(tokens) for tokens, _ in live], candidates))
    return out


def run(
    verifier: TokenVerifier, steps: list[Step], cache: VerifierCache, label: str
) -> dict[str, Any]:
    slots: list[int] = []
    scores: list[torch.Tensor] = []
    started = time.perf_counter()
    for step in track(steps, description=label, transient=True):
        cache.realign(step.sequences)
        scores.append(score_candidates(verifier, step.sequences, step.candidates, cache))
        slots.append(0 if cache.valid is None else cache.valid.shape[1])
    seconds = time.perf_counter() - started
    row_steps = sum(len(s.sequences) for s in steps)
    return {
        "cache": label,
        "seconds": seconds,
        "row_steps_per_s": row_steps / seconds,
        "peak_slots": max(slots),
        "mean_slots": sum(slots) / len(slots),
        "longest_row": max(len(seq) for s in steps for seq in s.sequences),
        "_scores": scores,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--rows", type=int, default=8)
    parser.add_argument("--prompt", type=int, nargs=2, default=(100, 200), metavar=("MIN", "MAX"))
    parser.add_argument("--length", type=int, nargs=2, default=(30, 90), metavar=("MIN", "MAX"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from transformers import AutoModelForCausalLM

    from workers.catalog import resolve

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    lm = AutoModelForCausalLM.from_pretrained(resolve(args.model), dtype=torch.float32)
    verifier = TokenVerifier.from_generator(lm).eval()
    del lm
    with torch.no_grad():
        torch.nn.init.normal_(verifier.head.weight, std=0.02)  # non-zero scores to compare
    steps = schedule(
        args.steps, args.rows, verifier.config.vocab_size, args.seed, args.prompt, args.length
    )
    grow = run(verifier, steps, VerifierCache(catch_up_tokens=None, compaction=False), "grow")
    default = run(verifier, steps, VerifierCache(), "catch-up + compaction")
    diff = max(
        float((a - b).abs().max()) if a.numel() else 0.0
        for a, b in zip(grow.pop("_scores"), default.pop("_scores"), strict=True)
    )
    report(
        "verifier_cache",
        [grow, default],
        summary={
            "model": args.model,
            "rows": args.rows,
            "steps": args.steps,
            "speedup": grow["seconds"] / default["seconds"],
            "peak_slots_ratio": grow["peak_slots"] / default["peak_slots"],
            "max_score_difference": diff,
        },
        title=f"verifier cache under churn, {args.model}, {args.rows} rows",
    )


if __name__ == "__main__":
    main()
