"""The final answer of a math solution: the last ``\\boxed{...}``, else the last ``#### N``,
else the last "the answer is N" / "answer: N", else the last number anywhere (see
``orchestrator.extraction`` for the rules)."""

from __future__ import annotations

import re
from collections.abc import Callable

from orchestrator.extraction.base import ANSWER_CUE, Extraction, after_cues, boxed_contents
from orchestrator.extraction.numbers import (
    LATEX_WRAPPER,
    leading_number,
    normalize_number,
    numbers_in,
)

__all__ = ["extract_math"]

_HASHES = re.compile(r"####")
_ASSIGNMENT = re.compile(r"[A-Za-z]\w*\s*=\s*(.+)", re.DOTALL)
_UNIT_WORDS = re.compile(r"(.*?[0-9])\s+[A-Za-z]{2,}(?:\s+[A-Za-z]+)*\.?", re.DOTALL)


def _boxed_answer(content: str) -> str | None:
    """A boxed answer: a number if it reads as one (``x = 5``, ``5 cm`` too), else the text."""
    content = content.strip().strip("$").strip()
    if not content:
        return None
    whole_wrapper = LATEX_WRAPPER.fullmatch(content)
    if whole_wrapper:
        content = whole_wrapper.group(1).strip()
    for candidate in (content, *_rhs(content), *_without_unit_words(content)):
        number = normalize_number(candidate)
        if number is not None:
            return number
    return content or None


def _rhs(content: str) -> list[str]:
    m = _ASSIGNMENT.fullmatch(content)
    return [m.group(1)] if m else []


def _without_unit_words(content: str) -> list[str]:
    m = _UNIT_WORDS.fullmatch(content)
    return [m.group(1)] if m else []


def _first_number(fragment: str) -> str | None:
    numbers = numbers_in(fragment)
    return numbers[0] if numbers else None


def _answer_after_cue(
    text: str, cues: re.Pattern[str], read: Callable[[str], str | None]
) -> str | None:
    """``read`` applied to the text after each cue, last cue first; the first hit."""
    for fragment in after_cues(text, cues):
        answer = read(fragment)
        if answer is not None:
            return answer
    return None


def extract_math(text: str) -> Extraction:
    r"""The final answer of a math solution (see the module docstring for the rule order).

    >>> extract_math(r"so $x = \boxed{\frac{3}{4}}$").answer
    '3/4'
    >>> extract_math("Step 1: 6 * 7 = 42\n#### 42").answer
    '42'
    """
    if not text.strip():
        return Extraction.fail("empty completion")
    for content in reversed(boxed_contents(text)):
        answer = _boxed_answer(content)
        if answer is not None:
            return Extraction.ok(answer)
    for cues, read in ((_HASHES, leading_number), (ANSWER_CUE, _first_number)):
        answer = _answer_after_cue(text, cues, read)
        if answer is not None:
            return Extraction.ok(answer)
    numbers = numbers_in(text)
    if numbers:
        return Extraction.ok(numbers[-1])
    return Extraction.fail("no number found in completion")
