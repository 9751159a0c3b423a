"""Split a sampled reasoning text into steps, with the final-answer sentence set apart.

Rules, applied in this order (``segment_steps`` is a pure function of its arguments):

1. Line ends are normalised (``\\r\\n`` and ``\\r`` become ``\\n``); every step is stripped.
2. The final answer: the last line holding an answer cue (``####``, ``\\boxed{``,
   ``\\fbox{``, "final answer", "answer is", "answer:"; case-insensitive) is cut at the start
   of the sentence holding the cue (after the last ``.``/``!``/``?`` followed by a space
   before it); from there to the end of the line is ``final``, the text before it stays in
   the body. A leading "Step k:" marker is dropped from ``final``. Lines after that line are
   post-answer chatter ("I hope it helps") and are dropped. No cue: ``final`` is None.
3. Fenced code blocks (```` ``` ```` or ``~~~``, up to the closing fence, or the end of the
   body when unclosed) are never split: each is one unit, fences included.
4. If any line of the body opens with a step marker ("Step 3:", "**Step 3.**",
   "### Step 3 -", case-insensitive), each marker starts a step that runs up to the next
   marker, blank lines inside it dropped; the marker is removed (a title after it stays).
   Text before the first marker is one step of its own.
5. Otherwise each non-empty line is a step (``unit="line"``, the default), or each block of
   lines between blank lines is (``unit="paragraph"``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["Segmentation", "segment_steps"]

_ANSWER_CUE = re.compile(
    r"####|\\(?:boxed|fbox)\s*\{|\bfinal\s+answer\b|\banswer\b[\s*_]*(?:is\b|:)",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"[.!?](?:\*\*|__)?\s+")
_STEP_MARKER = re.compile(
    r"""^[ \t]*(?:\#{1,6}[ \t]*)?(?:\*\*|__)?[ \t]*
        step[ \t]*\d+[ \t]*(?:[:.)\-\u2013\u2014][ \t]*)?(?:\*\*|__)?[ \t]*(?:[:.][ \t]*)?""",
    re.IGNORECASE | re.VERBOSE,
)
_FENCE = re.compile(r"^[ \t]*(```|~~~)")


@dataclass(frozen=True)
class Segmentation:
    """The steps of one reasoning text, in order, and its final-answer sentence (or None)."""

    steps: tuple[str, ...]
    final: str | None

    @property
    def all_steps(self) -> tuple[str, ...]:
        """``steps`` followed by ``final`` when there is one."""
        return (*self.steps, self.final) if self.final is not None else self.steps


def _strip_marker(line: str) -> str:
    return _STEP_MARKER.sub("", line, count=1).strip()


def _split_final(lines: list[str]) -> tuple[list[str], str | None]:
    """(body lines, final-answer sentence) per rule 2."""
    for i in range(len(lines) - 1, -1, -1):
        cues = list(_ANSWER_CUE.finditer(lines[i]))
        if not cues:
            continue
        line = lines[i]
        cue_at = cues[-1].start()
        start = 0
        for end in _SENTENCE_END.finditer(line, 0, cue_at):
            start = end.end()
        head, final = line[:start].strip(), _strip_marker(line[start:])
        body = lines[:i] + ([head] if head else [])
        return body, final or None
    return lines, None


def _units(lines: list[str]) -> list[str | None]:
    """Lines with each fenced code block joined into one unit; None marks a blank line."""
    units: list[str | None] = []
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            units.append(lines[i] if lines[i].strip() else None)
            i += 1
            continue
        j = i + 1
        while j < len(lines) and not lines[j].lstrip().startswith(opening.group(1)):
            j += 1
        units.append("\n".join(lines[i : j + 1]))
        i = j + 1
    return units


def _by_markers(units: list[str | None]) -> list[str]:
    chunks: list[list[str]] = [[]]
    for unit in units:
        if unit is None:
            continue
        if _STEP_MARKER.match(unit):
            chunks.append([])
            unit = _strip_marker(unit)
        if unit.strip():
            chunks[-1].append(unit.strip())
    return ["\n".join(chunk) for chunk in chunks if chunk]


def _by_paragraphs(units: list[str | None]) -> list[str]:
    paragraphs: list[list[str]] = [[]]
    for unit in units:
        if unit is None:
            paragraphs.append([])
        else:
            paragraphs[-1].append(unit.strip())
    return ["\n".join(p) for p in paragraphs if p]


def segment_steps(text: str, *, unit: Literal["line", "paragraph"] = "line") -> Segmentation:
    """Split ``text`` into steps and a final-answer sentence (see the module docstring).

    Example:
        >>> seg = segment_steps("Step 1: 6 * 7 = 42.\\nStep 2: Check: 42 / 7 = 6.\\n#### 42")
        >>> seg.steps, seg.final
        (('6 * 7 = 42.', 'Check: 42 / 7 = 6.'), '#### 42')
        >>> segment_steps("We add 2 and 2.\\n\\nThat is 4. So the answer is 4.")
        Segmentation(steps=('We add 2 and 2.', 'That is 4.'), final='So the answer is 4.')
    """
    if unit not in ("line", "paragraph"):
        raise ValueError(f"unit is {unit!r}; it must be 'line' or 'paragraph'")
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    body, final = _split_final(lines)
    units = _units(body)
    if any(u is not None and _STEP_MARKER.match(u) for u in units):
        steps = _by_markers(units)
    elif unit == "paragraph":
        steps = _by_paragraphs(units)
    else:
        steps = [u.strip() for u in units if u is not None]
    return Segmentation(steps=tuple(steps), final=final)
