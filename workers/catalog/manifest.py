"""``system2-manifest.json``: what a converted model directory was made from, and the sha256
of every weights file in it, so later loads can detect damaged or swapped weights."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from workers.catalog.join import sha256_file
from workers.catalog.paths import MANIFEST_NAME
from workers.errors import CatalogError, ChecksumMismatchError, ModelNotPulledError

__all__ = [
    "WEIGHT_SUFFIXES",
    "Manifest",
    "hash_weights",
    "read_manifest",
    "verify_weights",
    "weights_files",
    "write_manifest",
]

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
_FORMAT_VERSION = 1


@dataclass(frozen=True)
class Manifest:
    name: str
    source_sha256: str
    source_size_bytes: int
    dtype: str | None
    """``None`` when the weights were copied rather than converted."""
    weights: dict[str, str] = field(default_factory=dict)
    """Path relative to the model directory (POSIX) -> sha256."""
    format_version: int = _FORMAT_VERSION


def weights_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES)


def hash_weights(directory: Path, *, progress: bool = False) -> dict[str, str]:
    return {
        p.relative_to(directory).as_posix(): sha256_file(p, progress=progress)
        for p in weights_files(directory)
    }


def write_manifest(directory: Path, manifest: Manifest) -> Path:
    path = directory / MANIFEST_NAME
    path.write_text(json.dumps(asdict(manifest), indent=2, sort_keys=True) + "\n")
    return path


def read_manifest(directory: Path) -> Manifest | None:
    """The manifest in ``directory``, or ``None`` if it has none."""
    path = directory / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text())
        return Manifest(
            name=str(raw["name"]),
            source_sha256=str(raw["source_sha256"]),
            source_size_bytes=int(raw["source_size_bytes"]),
            dtype=None if raw["dtype"] is None else str(raw["dtype"]),
            weights={str(k): str(v) for k, v in raw["weights"].items()},
            format_version=int(raw["format_version"]),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CatalogError(f"unreadable manifest {path}: {exc}") from exc


def verify_weights(directory: Path, manifest: Manifest, *, progress: bool = False) -> None:
    """Every weights file in ``directory`` must be listed in ``manifest`` with its sha256."""
    if not manifest.weights:
        raise CatalogError(f"manifest in {directory} lists no weights files")
    for rel, expected in manifest.weights.items():
        path = directory / rel
        if not path.is_file():
            raise ModelNotPulledError(manifest.name, f"{path} is missing")
        actual = sha256_file(path, progress=progress)
        if actual != expected:
            raise ChecksumMismatchError(str(path), expected, actual)
    for path in weights_files(directory):
        if path.relative_to(directory).as_posix() not in manifest.weights:
            raise ChecksumMismatchError(str(path), "(not in the manifest)", sha256_file(path))
