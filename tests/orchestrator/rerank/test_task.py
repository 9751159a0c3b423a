"""How a rerank task shows code to the models: entry point renamed, docstrings stripped."""

from __future__ import annotations

from orchestrator.rerank.task import RerankTask, rename_entry_point

INSTRUCTION = 'def add(a, b):\n    """Add two numbers."""\n'


def test_rename_touches_only_the_entry_point() -> None:
    """The definition and direct calls are renamed; methods and longer names are not."""
    code = "def fib(n):\n    return fib(n - 1) + obj.fib(n) + fib_2(n)\n"
    assert rename_entry_point(code, "fib") == (
        "def f(n):\n    return f(n - 1) + obj.fib(n) + fib_2(n)\n"
    )


def test_code_candidates_are_shown_without_docstrings_or_comments() -> None:
    """The reranker's view of code drops docstrings and comments (the instruction keeps its
    docstring); code that does not parse is shown as written."""
    code = 'def add(a, b):\n    """Add two numbers."""\n    # easy\n    return a + b\n'
    task = RerankTask(instruction=INSTRUCTION, candidates=(code, "def add(:"), code=True,
                      entry_point="add")  # fmt: skip
    assert task.shown_candidates == ("def f(a, b):\n    return a + b", "def f(:")
    assert '"""Add two numbers."""' in task.shown_instruction
