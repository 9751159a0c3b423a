"""The letter of a multiple-choice answer: from the last ``\\boxed{}``, the last "answer
is" cue, or the last line naming only a letter or a choice's text."""

from __future__ import annotations

import re
from collections.abc import Sequence

from orchestrator.extraction.base import ANSWER_CUE, Extraction, after_cues, boxed_contents

__all__ = ["extract_choice"]

_MARKUP = re.compile(r"\*\*|__|`|\\text\{|\\textbf\{|\\boxed\{|[$*\"'“”‘’]")  # noqa: RUF001
# "(B)", "B", "B.", "B)", "B:" at the start of a fragment; lowercase only when parenthesized.
_LEADING_LETTER = re.compile(r"\s*(?:\(([A-Za-z])\)|\[([A-Za-z])\]|([A-Z])(?![A-Za-z0-9]))[.:)}]*")


def _strip_markup(s: str) -> str:
    return _MARKUP.sub("", s).replace("}", " ").strip()


def _norm_choice(s: str) -> str:
    return " ".join(_strip_markup(s).casefold().split()).rstrip(".")


def _letter_of(fragment: str, choices: Sequence[str], letters: str, *, whole: bool) -> str | None:
    """The choice letter ``fragment`` names. ``whole``: the fragment must be only the letter
    (or the letter followed by its own choice text); otherwise any text may follow it."""
    fragment = _strip_markup(fragment)
    normalized = _norm_choice(fragment)
    sentence = _norm_choice(re.split(r"(?<=[^\s.])\.\s", fragment, maxsplit=1)[0])
    for index, choice in enumerate(choices[: len(letters)]):
        if _norm_choice(choice) and _norm_choice(choice) in (normalized, sentence):
            return letters[index]
    m = _LEADING_LETTER.match(fragment)
    if m:
        letter = (m.group(1) or m.group(2) or m.group(3)).upper()
        rest = _norm_choice(fragment[m.end() :])
        if letter in letters:
            index = letters.index(letter)
            own_text = _norm_choice(choices[index]) if index < len(choices) else None
            if not whole or not rest or rest == own_text:
                return letter
    return None


def extract_choice(text: str, choices: Sequence[str] = ()) -> Extraction:
    """The letter of the chosen option, from (first rule that gives one) the last
    ``\\boxed{}``; the last "answer is (B)" / "Answer: B" / "answer is <choice text>"; the last
    line that is only a letter ("(B)", "B.", "**B**", "B) London") or only a choice's text.
    Letters run A.. up to the number of choices; with no ``choices`` any letter A-Z is valid.
    A lowercase letter counts only in parentheses ("(b)"), so "answer: a bit" is no answer.
    """
    if not text.strip():
        return Extraction.fail("empty completion")
    n = len(choices) if choices else 26
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[: min(n, 26)]
    for content in reversed(boxed_contents(text)):
        letter = _letter_of(content, choices, letters, whole=True)
        if letter:
            return Extraction.ok(letter)
    for fragment in after_cues(text, ANSWER_CUE):
        letter = _letter_of(fragment, choices, letters, whole=False)
        if letter:
            return Extraction.ok(letter)
    for line in reversed(text.splitlines()):
        if line.strip():
            letter = _letter_of(line, choices, letters, whole=True)
            if letter:
                return Extraction.ok(letter)
    span = f"A-{letters[-1]}" if letters else "none"
    return Extraction.fail(f"no choice letter ({span}) or choice text found in completion")
