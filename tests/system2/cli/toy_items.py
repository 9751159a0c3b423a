"""Toy arithmetic items for the verifier CLI tests, standing in for a data set's loader."""

from orchestrator.types import Query
from system2.evaluation.datasets import EvalItem

__all__ = ["toy_items"]


def toy_items(name: str, *, limit: int, seed: int) -> list[EvalItem]:
    """Items whose gold rationale is the reference (a random model solves nothing)."""
    return [
        EvalItem(
            id=f"toy/{seed}/{i}",
            query=Query(id=f"toy/{seed}/{i}", text=f"What is {i} + 4?"),
            gold=str(i + 4),
            metadata={"rg_entry": {"metadata": {"answer_cot": f"The answer is {i + 4}."}}},
        )
        for i in range(limit)
    ]
