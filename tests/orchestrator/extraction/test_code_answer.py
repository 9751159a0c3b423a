"""Code answers: fenced blocks, bare definitions and the errors when there is none."""

from __future__ import annotations

import pytest

from orchestrator.extraction.base import Extraction
from orchestrator.extraction.code_answer import extract_code

_TWO_BLOCKS = """Here is my solution:
```python
def add(a, b):
    return a + b
```
And a quick test:
```python
print(add(1, 2))
```
"""


def test_extract_code_prefers_block_with_entry_point() -> None:
    """The block defining the entry point wins over a later block that does not."""
    assert extract_code(_TWO_BLOCKS, "add").answer == "def add(a, b):\n    return a + b\n"


def test_extract_code_without_entry_point_takes_last_block() -> None:
    """With no entry point the last fenced block is the answer."""
    assert extract_code(_TWO_BLOCKS).answer == "print(add(1, 2))\n"


def test_extract_code_takes_last_of_several_definitions() -> None:
    """A revised definition in a later block replaces the first draft."""
    text = "```python\ndef f():\n    return 1\n```\nFixed:\n```\ndef f():\n    return 2\n```"
    assert extract_code(text, "f").answer == "def f():\n    return 2\n"


def test_extract_code_skips_other_languages() -> None:
    """Fences tagged with a non-Python language (```text) are not code answers."""
    text = "```py\ndef f():\n    pass\n```\n```text\noutput here\n```"
    assert extract_code(text).answer == "def f():\n    pass\n"


def test_extract_code_unclosed_fence_runs_to_end() -> None:
    """A completion cut off inside a fence still yields the code written so far."""
    text = "```python\ndef add(a, b):\n    return a + b"
    assert extract_code(text, "add").answer == "def add(a, b):\n    return a + b\n"


def test_extract_code_dedents_indented_fence() -> None:
    """A fenced block indented inside a list item comes back dedented."""
    text = "1. Code:\n   ```python\n   def g():\n       return 0\n   ```"
    assert extract_code(text, "g").answer == "def g():\n    return 0\n"


def test_extract_code_bare_def_with_imports_and_trailing_prose() -> None:
    """Without fences, a bare def is taken with the imports above it and without the prose after."""
    text = (
        "Sure.\nfrom typing import List\n\ndef total(xs: List[int]) -> int:\n"
        "    return sum(xs)\n\n@cache\ndef helper():\n    pass\nThis sums the list."
    )
    assert extract_code(text, "total").answer == (
        "from typing import List\n\ndef total(xs: List[int]) -> int:\n    return sum(xs)\n\n"
        "@cache\ndef helper():\n    pass\n"
    )


def test_extract_code_bare_def_ignores_indented_and_similar_names() -> None:
    """Only a column-0 def of exactly the entry point counts (not a method, not add2)."""
    text = "class A:\n    def add(self):\n        pass\ndef add2():\n    pass"
    assert extract_code(text, "add") == Extraction(
        answer=None, error="no fenced code block or def add( found"
    )


@pytest.mark.parametrize(
    ("text", "entry_point", "error"),
    [
        ("I cannot write this.", "add", "no fenced code block or def add( found"),
        ("I cannot write this.", None, "no fenced code block found"),
        ("```text\nhi\n```", None, "no fenced code block found"),
        ("", "add", "empty completion"),
    ],
)
def test_extract_code_errors(text: str, entry_point: str | None, error: str) -> None:
    """Missing code gives None and an error naming what was looked for."""
    assert extract_code(text, entry_point) == Extraction(answer=None, error=error)
