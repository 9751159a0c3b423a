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

import re
import textwrap
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction

from orchestrator.types import TaskType

__all__ = [
    "Extraction",
    "extract_answer",
    "extract_choice",
    "extract_code",
    "extract_math",
    "extract_text",
    "normalize_number",
]


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


# --- numbers -----------------------------------------------------------------------------

# ASCII digits only: `\d` would also match e.g. Arabic-Indic digits.
_DEC = r"[0-9]+(?:\.[0-9]+)?"
_CORE = rf"""
    (?P<sign>[-+\u2212])?
    (?:\\?\$\s?)?                                   # a dollar sign, maybe LaTeX-escaped
    (?:
        \\[dt]?frac\s*(?:
            \{{\s*(?P<fn>[-+]?{_DEC})\s*\}}\s*\{{\s*(?P<fd>[-+]?{_DEC})\s*\}}
          | (?P<fn1>[0-9])(?P<fd1>[0-9])            # \frac34
        )
      | (?P<int>[0-9]{{1,3}}(?:,[0-9]{{3}})+(?![0-9])|[0-9]+|(?=\.[0-9]))
        (?:
            \.(?P<dec>[0-9]+)
          | /(?P<den>[0-9]+)(?![0-9]|\.[0-9])
        )?
    )
"""
# In running text a number must not be glued to a word, a decimal point or a slash (1/0).
_NUMBER_IN_TEXT = re.compile(rf"(?<![0-9A-Za-z./]){_CORE}", re.VERBOSE)
_NUMBER_FULL = re.compile(_CORE, re.VERBOSE)

_LATEX_SPACING = re.compile(r"\\[!,;: ]|~")
_LATEX_WRAPPER = re.compile(r"\\(?:text|textbf|mathrm|mathbf|mbox|operatorname)\s*\{([^{}]*)\}")
_DEGREES = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|°")


def _unwrap_latex(s: str) -> str:
    r"""``\text{5}`` -> ``5``; a wrapper of letters only (a unit: ``\text{ cm}``) is dropped."""

    def repl(m: re.Match[str]) -> str:
        inner = m.group(1)
        return "" if re.fullmatch(r"[A-Za-z .]*", inner) else inner

    return _LATEX_WRAPPER.sub(repl, s)


def _strip_trailing_junk(s: str) -> str:
    """Drop a sentence's final period and percent signs: "5%." -> "5"."""
    while True:
        t = s.rstrip().rstrip(".").rstrip()
        t = t.removesuffix("\\%").removesuffix("%")
        if t == s:
            return s
        s = t


def _plain_decimal(sign: str, int_part: str, dec_part: str) -> str:
    # String arithmetic, not Decimal/int: exact at any length and free of int-size limits.
    int_part = int_part.replace(",", "").lstrip("0") or "0"
    dec_part = dec_part.rstrip("0")
    if int_part == "0" and not dec_part:
        return "0"  # also turns "-0" into "0"
    body = f"{int_part}.{dec_part}" if dec_part else int_part
    return f"-{body}" if sign == "-" else body


def _fraction(sign: str, num: str, den: str) -> str | None:
    try:
        value = Fraction(num) / Fraction(den)
    except (ZeroDivisionError, ValueError):  # ValueError: past Python's int-digit limit
        return None
    if sign == "-":
        value = -value
    try:
        return str(value)  # reduced; "2" when the denominator is 1
    except ValueError:
        return None


def _canonical(m: re.Match[str]) -> str | None:
    sign = "-" if m.group("sign") in ("-", "\u2212") else ""
    if m.group("fn") is not None:
        return _fraction(sign, m.group("fn"), m.group("fd"))
    if m.group("fn1") is not None:
        return _fraction(sign, m.group("fn1"), m.group("fd1"))
    if m.group("den") is not None:
        return _fraction(sign, m.group("int").replace(",", ""), m.group("den"))
    return _plain_decimal(sign, m.group("int"), m.group("dec") or "")


def normalize_number(s: str) -> str | None:
    r"""The canonical spelling of a number written as ``s``, or None if ``s`` is not one.

    Strips ``$``/``\$``, thousands commas, LaTeX spacing and ``\text{}`` wrappers, a trailing
    ``.`` or ``%`` and degree marks; drops trailing zeros and a leading ``+``. Fractions
    (``a/b``, ``\frac{a}{b}``, ``\dfrac``) are reduced, and become integers when they are one.
    Apply it to gold answers too, so both sides compare in the same spelling.

    >>> [normalize_number(x) for x in ["1,234.50", "3.0", "-0", r"\dfrac{6}{8}", "4/2", "5%"]]
    ['1234.5', '3', '0', '3/4', '2', '5']
    >>> normalize_number("five") is None
    True
    """
    s = _LATEX_SPACING.sub("", s.replace("{,}", ","))
    s = _DEGREES.sub("", _unwrap_latex(s)).replace("\\$", "").replace("$", "")
    s = _strip_trailing_junk(s.strip())
    m = _NUMBER_FULL.fullmatch(s)
    return _canonical(m) if m else None


def _numbers(text: str) -> list[str]:
    """Every number in ``text``, canonical, in order (unparsable ones, e.g. x/0, skipped)."""
    found = (_canonical(m) for m in _NUMBER_IN_TEXT.finditer(text))
    return [n for n in found if n is not None]


# --- math --------------------------------------------------------------------------------

_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
_HASHES = re.compile(r"####")
_ANSWER_CUE = re.compile(r"\banswer\b\s*(?:is\b\s*:?|:)", re.IGNORECASE)
_ASSIGNMENT = re.compile(r"[A-Za-z]\w*\s*=\s*(.+)", re.DOTALL)
_UNIT_WORDS = re.compile(r"(.*?[0-9])\s+[A-Za-z]{2,}(?:\s+[A-Za-z]+)*\.?", re.DOTALL)


def _boxed_contents(text: str) -> list[str]:
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


def _boxed_answer(content: str) -> str | None:
    """A boxed answer: a number if it reads as one (``x = 5``, ``5 cm`` too), else the text."""
    content = content.strip().strip("$").strip()
    if not content:
        return None
    whole_wrapper = _LATEX_WRAPPER.fullmatch(content)
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


def _after_cues(text: str, cues: re.Pattern[str]) -> Iterator[str]:
    """The text after each cue up to the end of its line (or the next cue), last cue first."""
    matches = list(cues.finditer(text))
    for k in range(len(matches) - 1, -1, -1):
        start = matches[k].end()
        end = text.find("\n", start)
        end = len(text) if end == -1 else end
        if k + 1 < len(matches):  # a later cue on the same line was already read
            end = min(end, matches[k + 1].start())
        yield text[start:end]


def _first_number(fragment: str) -> str | None:
    numbers = _numbers(fragment)
    return numbers[0] if numbers else None


def _leading_number(fragment: str) -> str | None:
    """A number that opens ``fragment`` ("#### 42 dollars"), not one later in it ("#### Step 2")."""
    m = _NUMBER_FULL.match(fragment.lstrip(" \t*"))
    return _canonical(m) if m else None


def _answer_after_cue(
    text: str, cues: re.Pattern[str], read: Callable[[str], str | None]
) -> str | None:
    """``read`` applied to the text after each cue, last cue first; the first hit."""
    for fragment in _after_cues(text, cues):
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
    for content in reversed(_boxed_contents(text)):
        answer = _boxed_answer(content)
        if answer is not None:
            return Extraction.ok(answer)
    for cues, read in ((_HASHES, _leading_number), (_ANSWER_CUE, _first_number)):
        answer = _answer_after_cue(text, cues, read)
        if answer is not None:
            return Extraction.ok(answer)
    numbers = _numbers(text)
    if numbers:
        return Extraction.ok(numbers[-1])
    return Extraction.fail("no number found in completion")


# --- code --------------------------------------------------------------------------------

_FENCE = re.compile(r"^[ \t]*(```|~~~)[ \t]*([\w+.-]*)[^\n]*$", re.MULTILINE)
_CODE_LANGS = frozenset({"", "python", "python3", "py", "py3"})
# A top-level line that still belongs to a bare function: more defs, decorators, imports.
_CODE_CONTINUATION = re.compile(r"(?:async\s+def|def|class|import|from|if __name__)\b|[)\]}@#]")


def _fenced_blocks(text: str) -> list[str]:
    """Python (or untagged) fenced blocks in order; an unclosed last fence runs to the end."""
    blocks: list[str] = []
    fences = list(_FENCE.finditer(text))
    i = 0
    while i < len(fences):
        opening = fences[i]
        closing = fences[i + 1] if i + 1 < len(fences) else None
        end = closing.start() if closing else len(text)
        if opening.group(2).lower() in _CODE_LANGS:
            blocks.append(text[opening.end() : end])
        i += 2
    return blocks


def _def_pattern(entry_point: str) -> re.Pattern[str]:
    return re.compile(rf"^[ \t]*(?:async\s+)?def\s+{re.escape(entry_point)}\s*\(", re.MULTILINE)


def _clean_code(code: str) -> str:
    return textwrap.dedent(code.strip("\n")).rstrip() + "\n"


def _bare_function(text: str, entry_point: str) -> str | None:
    """The last column-0 ``def entry_point(`` on, with the imports just above it, up to the
    first top-level line that reads as prose (a fence, a sentence)."""
    starts = [
        m.start() for m in _def_pattern(entry_point).finditer(text) if text[m.start()] not in " \t"
    ]
    if not starts:
        return None
    start = starts[-1]
    line_end = start - 1  # the newline that ends the line above
    for line in reversed(text[:start].split("\n")[:-1]):  # take the imports just above
        line_start = line_end - len(line)
        if line.startswith(("import ", "from ")):
            start = line_start
        elif line.strip():
            break
        line_end = line_start - 1
    lines = text[start:].split("\n")
    kept = [lines[0]]
    for line in lines[1:]:
        if line.strip() and not line[0].isspace() and not _CODE_CONTINUATION.match(line):
            break
        kept.append(line)
    return _clean_code("\n".join(kept))


def extract_code(text: str, entry_point: str | None = None) -> Extraction:
    """The solution code: the last fenced block containing ``def entry_point`` (any last
    fenced block when no entry point is given), else a bare ``def entry_point(`` onwards.

    Fences tagged with another language (```text, ```bash) are skipped. The code comes back
    dedented, ending in one newline.
    """
    if not text.strip():
        return Extraction.fail("empty completion")
    blocks = _fenced_blocks(text)
    if entry_point is None:
        nonempty = [b for b in blocks if b.strip()]
        if nonempty:
            return Extraction.ok(_clean_code(nonempty[-1]))
        return Extraction.fail("no fenced code block found")
    has_def = _def_pattern(entry_point)
    for block in reversed(blocks):
        if has_def.search(block):
            return Extraction.ok(_clean_code(block))
    bare = _bare_function(text, entry_point)
    if bare is not None:
        return Extraction.ok(bare)
    return Extraction.fail(f"no fenced code block or def {entry_point}( found")


# --- multiple choice ---------------------------------------------------------------------

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
    for content in reversed(_boxed_contents(text)):
        letter = _letter_of(content, choices, letters, whole=True)
        if letter:
            return Extraction.ok(letter)
    for fragment in _after_cues(text, _ANSWER_CUE):
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


# --- text --------------------------------------------------------------------------------


def extract_text(text: str) -> Extraction:
    """The last non-empty line, stripped."""
    for line in reversed(text.splitlines()):
        if line.strip():
            return Extraction.ok(line.strip())
    return Extraction.fail("empty completion")


# --- dispatch ----------------------------------------------------------------------------

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
