"""Numbers in model text: ``normalize_number`` gives one canonical spelling per number
(thousands commas, ``$``, LaTeX, trailing zeros and signs handled; fractions reduced),
``numbers_in`` finds every number in running text.
"""

from __future__ import annotations

import re
from fractions import Fraction

__all__ = ["LATEX_WRAPPER", "leading_number", "normalize_number", "numbers_in"]

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
LATEX_WRAPPER = re.compile(r"\\(?:text|textbf|mathrm|mathbf|mbox|operatorname)\s*\{([^{}]*)\}")
_DEGREES = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|°")


def _unwrap_latex(s: str) -> str:
    r"""``\text{5}`` -> ``5``; a wrapper of letters only (a unit: ``\text{ cm}``) is dropped."""

    def repl(m: re.Match[str]) -> str:
        inner = m.group(1)
        return "" if re.fullmatch(r"[A-Za-z .]*", inner) else inner

    return LATEX_WRAPPER.sub(repl, s)


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


def numbers_in(text: str) -> list[str]:
    """Every number in ``text``, canonical, in order (unparsable ones, e.g. x/0, skipped)."""
    found = (_canonical(m) for m in _NUMBER_IN_TEXT.finditer(text))
    return [n for n in found if n is not None]


def leading_number(fragment: str) -> str | None:
    """A number that opens ``fragment`` ("#### 42 dollars"), not one later in it ("#### Step 2")."""
    m = _NUMBER_FULL.match(fragment.lstrip(" \t*"))
    return _canonical(m) if m else None
