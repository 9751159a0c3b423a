"""A math reasoning agent: self-consistency on the embedded model, with its trace.

Run: python examples/math_agent/agent.py ["question"] [--config path.yaml]
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import system2
from system2 import Query

HERE = Path(__file__).parent
DEFAULT_QUESTION = (
    "A baker makes 24 muffins in the morning and 18 in the afternoon. She sells 30 of them "
    "and gives 5 to her neighbour. How many muffins does she have left?"
)


async def main(question: str, config: Path) -> None:
    async with system2.load_orchestrator(config) as orch:
        answer = await orch.answer(Query(text=question, task="math"))
    vote = answer.trace.vote
    print(f"Question: {question}\n")
    print(f"Chosen reasoning:\n{answer.text.strip()}\n")
    if vote is not None:
        tally = ", ".join(
            f"{a}: {c:g}" for a, c in sorted(vote.counts.items(), key=lambda x: -x[1])
        )
        early = " (stopped early)" if vote.stopped_early else ""
        print(f"Votes: {tally}; margin {vote.margin:.2f}{early}")
    print(
        f"Answer: {answer.answer}  [{answer.status}; {answer.usage.completion_tokens} tokens "
        f"generated in {answer.usage.wall_seconds:.1f} s]"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("question", nargs="?", default=DEFAULT_QUESTION)
    parser.add_argument("--config", type=Path, default=HERE / "math_agent.yaml")
    args = parser.parse_args()
    asyncio.run(main(args.question, args.config))
