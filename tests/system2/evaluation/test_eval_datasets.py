from __future__ import annotations

import pytest

from orchestrator.types import Query
from system2.evaluation import (
    EvalItem,
    available_datasets,
    load_dataset,
    score_item,
)


def test_reasoning_gym_loading_is_deterministic_per_seed() -> None:
    """The same (name, limit, seed) yields identical items, ids included."""
    first = load_dataset("gsm_symbolic", limit=5, seed=0)
    second = load_dataset("gsm_symbolic", limit=5, seed=0)
    assert [(i.id, i.query.text, i.gold) for i in first] == [
        (i.id, i.query.text, i.gold) for i in second
    ]
    assert [i.id for i in first] == [f"gsm_symbolic/s0/{k}" for k in range(5)]
    assert all(i.query.id == i.id for i in first)


def test_reasoning_gym_seeds_differ() -> None:
    """Different seeds give different questions."""
    a = load_dataset("gsm_symbolic", limit=5, seed=0)
    b = load_dataset("gsm_symbolic", limit=5, seed=1000)
    assert [i.query.text for i in a] != [i.query.text for i in b]
    assert {i.id for i in a}.isdisjoint(i.id for i in b)


def test_task_type_follows_the_dataset() -> None:
    """Numeric tasks are posed as math, others as text, and keep their reasoning-gym entry."""
    math_item = load_dataset("gsm_symbolic", limit=1, seed=0)[0]
    text_item = load_dataset("spell_backward", limit=1, seed=0)[0]
    assert math_item.query.task == "math"
    assert text_item.query.task == "text"
    assert text_item.metadata["rg_entry"]["answer"] == text_item.gold


def test_unknown_dataset_error_lists_valid_names() -> None:
    """An unknown name raises a ValueError that suggests the close match and valid names."""
    with pytest.raises(ValueError, match="unknown data set 'gsm_symbolik'") as info:
        load_dataset("gsm_symbolik", limit=3, seed=0)
    message = str(info.value)
    assert "Did you mean gsm_symbolic" in message
    assert "humaneval" in message
    assert "gsm_symbolic" in available_datasets()


def test_humaneval_subset_seed_zero_is_the_first_problems() -> None:
    """Seed 0 selects the first `limit` HumanEval problems, as code queries with tests."""
    items = load_dataset("humaneval", limit=3, seed=0)
    assert [i.id for i in items] == ["humaneval/0", "humaneval/1", "humaneval/2"]
    first = items[0]
    assert first.query.task == "code"
    assert first.query.entry_point == "has_close_elements"
    assert "def check(candidate)" in first.gold


def test_humaneval_subset_is_deterministic_per_seed() -> None:
    """A non-zero seed selects a reproducible sample that differs between seeds."""
    a = [i.id for i in load_dataset("humaneval", limit=10, seed=7)]
    assert a == [i.id for i in load_dataset("humaneval", limit=10, seed=7)]
    assert a != [i.id for i in load_dataset("humaneval", limit=10, seed=8)]
    assert a != [f"humaneval/{k}" for k in range(10)]
    assert len(load_dataset("humaneval", limit=1000, seed=0)) == 164


def _math_item(gold: str) -> EvalItem:
    return EvalItem(id="m", query=Query(id="m", text="How many?", task="math"), gold=gold)


def test_score_math_by_number() -> None:
    """Math answers are compared as normalized numbers."""
    assert score_item(_math_item("288"), "288").correct
    assert not score_item(_math_item("288"), "287").correct
    assert not score_item(_math_item("288"), "two hundred").correct
    outcome = score_item(_math_item("288"), None)
    assert not outcome.correct
    assert outcome.detail == "no answer"


def test_score_math_on_generated_items() -> None:
    """Every generated gsm_symbolic item accepts its own gold answer."""
    for item in load_dataset("gsm_symbolic", limit=10, seed=3):
        assert score_item(item, item.gold).correct


def test_score_text_task_uses_dataset_scorer() -> None:
    """Non-numeric reasoning-gym tasks use the task's own scorer and keep its raw score."""
    item = load_dataset("spell_backward", limit=1, seed=0)[0]
    right = score_item(item, item.gold)
    assert right.correct
    assert right.raw_score == 1.0
    wrong = score_item(item, "definitely not it")
    assert not wrong.correct
    assert wrong.raw_score is not None
    assert wrong.raw_score < 1.0


def test_score_humaneval_runs_the_tests() -> None:
    """HumanEval completions are scored by running the problem's tests."""
    item = load_dataset("humaneval", limit=1, seed=0)[0]
    assert score_item(item, item.metadata["canonical_solution"]).correct
    outcome = score_item(item, "    return None\n")
    assert not outcome.correct
    assert outcome.detail.startswith("tests failed")
