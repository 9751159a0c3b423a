"""The solution code of a completion: the last fenced block holding ``def <entry_point>``,
else a bare ``def <entry_point>(`` onwards."""

from __future__ import annotations

import re
import textwrap

from orchestrator.extraction.base import Extraction

__all__ = ["extract_code"]

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
