"""``RerankTask``: what a reranker reads (the instruction ``I_0`` and the candidates), and
how code is shown to the models.

Code candidates are shown without docstrings and comments (``strip_docstrings``). For code
with an entry point, ``def <entry_point>(`` and its call sites are renamed to ``f``
everywhere (candidates and ``I_0``), so no description can just repeat the function's name
and every column asks for the same ``f``.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

__all__ = ["RENAMED", "RerankTask", "rename_entry_point", "strip_docstrings"]

RENAMED = "f"
"""The name a code candidate's entry point is shown under."""


def rename_entry_point(code: str, entry_point: str, new: str = RENAMED) -> str:
    """``def entry_point(`` and every call ``entry_point(`` become ``new``; attribute calls
    (``obj.entry_point(``) and longer names (``entry_point_2(``) are left alone.

    >>> rename_entry_point("def fib(n):\\n    return fib(n - 1) + self.fib(n)", "fib")
    'def f(n):\\n    return f(n - 1) + self.fib(n)'
    """
    return re.sub(rf"(?<![\w.]){re.escape(entry_point)}(?=\s*\()", new, code)


def strip_docstrings(code: str) -> str:
    """``code`` without docstrings and comments (re-rendered by ``ast.unparse``); code that
    does not parse comes back unchanged. A chat model rewrites the whole function, docstring
    included; the docstring is a copy of the instruction, so without this it would dominate
    ``log P(c | I)`` and every description would restate it. Completion-style candidates, as
    in the paper, have no docstring either.

    >>> print(strip_docstrings("def f(x):\\n    'Double.'\\n    return 2 * x  # twice"))
    def f(x):
        return 2 * x
    """
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return code
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            not isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            or not body
        ):
            continue
        first = body[0]
        is_constant = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
        if is_constant and isinstance(first.value.value, str):
            node.body = body[1:] or [ast.Pass()]
    return ast.unparse(tree)


@dataclass(frozen=True)
class RerankTask:
    """What a reranker reads: the instruction ``I_0`` and the candidates.

    ``code``: the candidates are code (fenced and, with ``entry_point``, renamed to ``f``);
    otherwise they are text and the instruction is the question.
    """

    instruction: str
    candidates: tuple[str, ...]
    code: bool = False
    entry_point: str | None = None
    request_id: str = ""

    def _rename(self, text: str) -> str:
        if self.code and self.entry_point:
            return rename_entry_point(text, self.entry_point)
        return text

    @property
    def shown_instruction(self) -> str:
        """``I_0`` as the models see it (renamed for code)."""
        return self._rename(self.instruction)

    @property
    def shown_candidates(self) -> tuple[str, ...]:
        """The candidates as the models see them (code: renamed, docstrings stripped)."""
        if not self.code:
            return self.candidates
        return tuple(self._rename(strip_docstrings(c)) for c in self.candidates)
