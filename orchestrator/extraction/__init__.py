"""Pull the final answer out of a completion, one rule set per task type.

Extraction never raises on model text: when nothing usable is found, ``Extraction.answer``
is None and ``Extraction.error`` says what was missing. Only a programming error (an unknown
task type) raises.

Rules we chose (the self-consistency paper leaves them open):

- math: the last ``\\boxed{...}``, else the last ``#### N``, else the last "the answer is N" /
  "answer: N", else the last number anywhere. Numbers go through ``normalize_number``.
  Fractions stay fractions ("6/8" -> "3/4") and decimals stay decimals ("0.75"), so the
  two spellings are different answers; a fraction that is an integer becomes it ("4/2" -> "2").
- code: the last fenced block holding ``def <entry_point>``, else a bare ``def <entry_point>(``.
- multiple choice: the last ``\\boxed{}``, else the last "answer is" / "answer:" cue, else the
  last line holding only a letter or only one choice's text. The exact text of a choice is
  tried before a leading letter, so "A dog" picks the choice "A dog", not letter A.
- text: the last non-empty line.
"""

from __future__ import annotations

from orchestrator.extraction.base import Extraction
from orchestrator.extraction.by_task import extract_answer
from orchestrator.extraction.choice_answer import extract_choice
from orchestrator.extraction.code_answer import extract_code
from orchestrator.extraction.math_answer import extract_math
from orchestrator.extraction.numbers import normalize_number
from orchestrator.extraction.text_answer import extract_text

__all__ = [
    "Extraction",
    "extract_answer",
    "extract_choice",
    "extract_code",
    "extract_math",
    "extract_text",
    "normalize_number",
]
