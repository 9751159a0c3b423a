"""Which kind of token verifier a saved directory holds, and loading it onto a generator.

Two kinds share ``verifier.json``: ``"llm2"`` (``TokenVerifier``, a copy of the generator
with a scalar head; its files have no ``kind`` field) and ``"trunk_head"`` (``TrunkHead``,
the low-rank head on the generator's own hidden states). ``load(verifier=DIR)`` on a worker
goes through ``load_verifier``, so one config key serves both.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, get_args

from workers.verifier.network import TokenVerifier
from workers.verifier.trunk_head import TRUNK_FORMAT, TrunkHead

__all__ = ["VERIFIER_KINDS", "VerifierKind", "load_verifier", "saved_verifier_kind"]

VerifierKind = Literal["llm2", "trunk_head"]
VERIFIER_KINDS: tuple[str, ...] = get_args(VerifierKind)

_LLM2_FORMAT = "system2-token-verifier"


def saved_verifier_kind(directory: str | Path) -> VerifierKind:
    """The kind saved in ``directory``; ValueError naming the directory when it holds no
    saved verifier of a known kind."""
    path = Path(directory) / "verifier.json"
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"{directory} holds no saved verifier (no verifier.json)") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from None
    if meta.get("format") == TRUNK_FORMAT:
        return "trunk_head"
    if meta.get("format") == _LLM2_FORMAT and meta.get("kind", "llm2") == "llm2":
        return "llm2"
    raise ValueError(
        f"{path}: unknown verifier format {meta.get('format')!r} / kind {meta.get('kind')!r} "
        f"(known kinds: {', '.join(VERIFIER_KINDS)})"
    )


def load_verifier(
    directory: str | Path,
    generator: Any,
    *,
    attn_implementation: str = "sdpa",
    verify_base: bool = True,
) -> TokenVerifier | TrunkHead:
    """The saved verifier of either kind, rebuilt on ``generator`` (its fingerprint checked
    unless ``verify_base`` is False); ``attn_implementation`` applies to ``llm2`` only."""
    if saved_verifier_kind(directory) == "trunk_head":
        return TrunkHead.load(directory, generator, verify_base=verify_base)
    return TokenVerifier.load(
        directory, generator, attn_implementation=attn_implementation, verify_base=verify_base
    )
