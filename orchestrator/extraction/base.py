"""``Extraction``, what every extractor returns, and the text scanning two of them share:
the contents of ``\\boxed{...}`` and the text after an "answer is" / "answer:" cue."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["ANSWER_CUE", "Extraction", "after_cues", "boxed_contents"]

ANSWER_CUE = re.compile(r"\banswer\b\s*(?:is\b\s*:?|:)", re.IGNORECASE)
"""An "answer is" / "answer is:" / "answer:" cue."""

_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")


@dataclass(frozen=True)
class Extraction:
    """An extracted answer, or (answer None) the reason none was found."""

    answer: str | None
    error: str | None = None

    @classmethod
    def ok(cls, answer: str) -> Extraction:
        return cls(answer=answer, error=None)

    @classmethod
    def fail(cls, error: str) -> Extraction:
        return cls(answer=None, error=error)


def boxed_contents(text: str) -> list[str]:
    """The contents of every balanced ``\\boxed{...}``, nested braces included, in order."""
    closing: dict[int, int] = {}  # one pass pairs every brace: linear even for 1000 \boxed{
    stack: list[int] = []
    for i, ch in enumerate(text):
        if ch == "{":
            stack.append(i)
        elif ch == "}" and stack:
            closing[stack.pop()] = i
    out: list[str] = []
    for m in _BOXED.finditer(text):
        end = closing.get(m.end() - 1)
        if end is not None:
            out.append(text[m.end() : end])
    return out


def after_cues(text: str, cues: re.Pattern[str]) -> Iterator[str]:
    """The text after each cue up to the end of its line (or the next cue), last cue first."""
    matches = list(cues.finditer(text))
    for k in range(len(matches) - 1, -1, -1):
        start = matches[k].end()
        end = text.find("\n", start)
        end = len(text) if end == -1 else end
        if k + 1 < len(matches):  # a later cue on the same line was already read
            end = min(end, matches[k + 1].start())
        yield text[start:end]
