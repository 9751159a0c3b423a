"""Sanity checks on a joined GGUF file before handing it to the converter."""

from __future__ import annotations

from pathlib import Path

from workers.catalog.entries import CatalogEntry
from workers.errors import PullError

__all__ = ["GGUF_MAGIC", "check_gguf", "gguf_metadata"]

GGUF_MAGIC = b"GGUF"


def gguf_metadata(path: Path, keys: tuple[str, ...]) -> dict[str, object]:
    """The values of ``keys`` in ``path``'s GGUF metadata (``None`` where absent)."""
    from gguf import GGUFReader  # slow import, only needed while pulling

    with path.open("rb") as src:
        magic = src.read(len(GGUF_MAGIC))
    if magic != GGUF_MAGIC:
        raise PullError(f"{path} is not a GGUF file (magic {magic!r})")
    reader = GGUFReader(path)
    values: dict[str, object] = {}
    for key in keys:
        field = reader.get_field(key)
        values[key] = None if field is None else field.contents()
    return values


def check_gguf(entry: CatalogEntry, path: Path) -> None:
    """Raise ``PullError`` unless ``path`` is a GGUF whose metadata matches ``entry``."""
    meta = gguf_metadata(path, ("general.architecture", "general.name"))
    expected = {
        "general.architecture": entry.expected_architecture,
        "general.name": entry.expected_gguf_name,
    }
    for key, want in expected.items():
        if want is not None and meta[key] != want:
            raise PullError(f"{path}: GGUF {key} is {meta[key]!r}, the catalog expects {want!r}")
