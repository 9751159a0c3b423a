"""``normalize_step``: the key reasoning steps merge by in a ``ReasoningGraph`` (two steps
whose normalised texts are equal are one node)."""

from __future__ import annotations

import re
import unicodedata

__all__ = ["clean_text", "normalize_step"]

_SYMBOLS = str.maketrans(
    {
        "\u00d7": "*",  # multiplication sign
        "\u00b7": "*",  # middle dot
        "\u22c5": "*",  # dot operator
        "\u2217": "*",  # asterisk operator
        "\u00f7": "/",  # division sign
        "\u2212": "-",  # minus sign
        "\u2013": "-",  # en dash
        "\u2014": "-",  # em dash
    }
)
_LATEX = [
    (re.compile(r"\\(?:times|cdot|ast)(?![a-z])"), "*"),
    (re.compile(r"\\div(?![a-z])"), "/"),
    (re.compile(r"\\(?:left|right)(?![a-z])|\\[()\[\]]|\$"), " "),
]
_LIST_MARKER = re.compile(r"^\s*(?:[-*•+]|\(?\d+[.)]|step\s*\d+\s*[:.)-]?)\s+")
_MARKUP = re.compile(r"\*\*|__|`")
_NUMBER = re.compile(r"(?<![\w.,])(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(?![\d])")
_PUNCT = re.compile(r"(?<![0-9])[.,]|[.,](?![0-9])|[;:!?\"'\u201c\u201d\u2018\u2019]")
_SPACE = re.compile(r"\s+")
_OPERATOR_SPACE = re.compile(r"\s*([-+*/=<>^%()\[\]])\s*")


def _number(m: re.Match[str]) -> str:
    whole = m.group(1).replace(",", "").lstrip("0") or "0"
    frac = (m.group(2) or "").rstrip("0")
    return f"{whole}.{frac}" if frac else whole


def normalize_step(text: str) -> str:
    """The merge key of a step's text. Rules, in order:

    1. Unicode NFKC and casefold; the multiplication sign, middle dot, dot and asterisk
       operators and LaTeX ``\\times``/``\\cdot`` become ``*``, the division sign and
       ``\\div`` ``/``, the minus sign and en/em dashes ``-``; ``$``, ``\\(``, ``\\)``,
       ``\\[``, ``\\]``, ``\\left`` and ``\\right`` are dropped.
    2. A leading list or step marker ("- ", "3. ", "(2) ", "step 4:") is dropped, as is
       markdown ``**``, ``__`` and backticks.
    3. Numbers: thousands commas dropped ("1,234" -> "1234"), leading zeros and trailing
       decimal zeros dropped ("007" -> "7", "3.50" -> "3.5", "2.0" -> "2").
    4. Sentence punctuation ``. , ; : ! ?`` and quotes are dropped (a ``.`` or ``,``
       between digits stays); math symbols ``+ - * / = < > ^ % ( ) [ ]`` stay.
    5. Whitespace runs become one space; spaces around math symbols are dropped.

    A text that normalises to nothing keeps its casefolded, space-collapsed self.

    >>> normalize_step("**Step 2:** So, 1,200 \u00d7 3.50 = 4200.00!")
    'so 1200*3.5=4200'
    >>> normalize_step("so 1200 * 3.5 = 4200") == normalize_step("So: 1200*3.5=4200.")
    True
    """
    s = unicodedata.normalize("NFKC", text).casefold().translate(_SYMBOLS)
    for pattern, repl in _LATEX:
        s = pattern.sub(repl, s)
    s = _MARKUP.sub("", s)
    s = _LIST_MARKER.sub("", s, count=1)
    s = _NUMBER.sub(_number, s)
    s = _PUNCT.sub(" ", s)
    s = _OPERATOR_SPACE.sub(r"\1", _SPACE.sub(" ", s)).strip()
    return s or _SPACE.sub(" ", text.casefold()).strip()


def clean_text(text: str) -> str:
    r"""``text`` with ``\r\n`` and ``\r`` line ends as ``\n``, stripped: a step as stored."""
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()
