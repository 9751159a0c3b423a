"""``extract_answer``: the extractor of a query's task type, applied to a completion."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from orchestrator.extraction.base import Extraction
from orchestrator.extraction.choice_answer import extract_choice
from orchestrator.extraction.code_answer import extract_code
from orchestrator.extraction.math_answer import extract_math
from orchestrator.extraction.text_answer import extract_text
from orchestrator.types import TaskType

__all__ = ["extract_answer"]


_Extractor = Callable[[str, Sequence[str], str | None], Extraction]

_EXTRACTORS: dict[str, _Extractor] = {
    "math": lambda text, _choices, _entry: extract_math(text),
    "code": lambda text, _choices, entry_point: extract_code(text, entry_point),
    "multiple_choice": lambda text, choices, _entry: extract_choice(text, choices),
    "text": lambda text, _choices, _entry: extract_text(text),
}


def extract_answer(
    text: str,
    task: TaskType,
    *,
    choices: Sequence[str] = (),
    entry_point: str | None = None,
) -> Extraction:
    r"""Extract the final answer of ``task`` from a completion; never raises on the text.

    Raises ValueError only for a task type with no extractor.

    Example:
        >>> extract_answer("Each box holds 6, so 7 boxes hold 42.\n#### 42", "math")
        Extraction(answer='42', error=None)
        >>> extract_answer("The answer is (B).", "multiple_choice", choices=["cat", "dog"])
        Extraction(answer='B', error=None)
        >>> extract_answer("I am not sure.", "math").error
        'no number found in completion'
    """
    try:
        extractor = _EXTRACTORS[task]
    except KeyError:
        raise ValueError(f"no extractor for task type {task!r}") from None
    return extractor(text, choices, entry_point)
