"""``system2-manifest.json``: what a pulled model directory was made from, and every file in it.

Every file of the directory (weights, config, generation config, tokenizer, chat template,
licence, ...) is listed with its sha256, size and modification time (``mtime_ns``), all
measured at pull time. ``verify_files`` refuses a directory with a missing file, a file the
manifest does not list, or a file whose bytes differ. To keep loading fast:

- files under ``FULL_HASH_BELOW`` (64 MiB: configs, tokenizers, templates) are re-hashed on
  every load, which costs milliseconds;
- larger files (the weights) are trusted when their size and ``mtime_ns`` are the ones
  recorded at pull time, and re-hashed in full when either moved (a copied or touched cache,
  or an edit). Re-hashing the weights on every load would cost about 0.45 s for SmolLM2-135M
  (540 MB in float32), 2 s for the 0.5B (2.5 GB) and 6 s for the 1.5B (7 GB) at the 1.2 GB/s
  measured here. ``full=True`` re-hashes every file.

The size and mtime check catches damage and ordinary edits, not someone who edits a weights
file and then restores its mtime on purpose (who could as well rewrite this manifest).

Manifests of format 1 (written before every file was listed, with only the weights hashed)
are not trusted: such a directory counts as not pulled, and ``system2 models pull NAME``
makes it again.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from workers.catalog.hashing import sha256_file
from workers.catalog.paths import MANIFEST_NAME
from workers.errors import CatalogError, ChecksumMismatchError, ModelNotPulledError

__all__ = [
    "FORMAT_VERSION",
    "FULL_HASH_BELOW",
    "FileRecord",
    "Manifest",
    "model_files",
    "read_manifest",
    "record_files",
    "restamp",
    "verify_files",
    "write_manifest",
]

FORMAT_VERSION = 2
FULL_HASH_BELOW = 64 * 1024 * 1024
"""Files smaller than this are re-hashed on every load; larger ones when their stat moved."""

_WRITING = f".{MANIFEST_NAME}.tmp"


@dataclass(frozen=True)
class FileRecord:
    sha256: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Manifest:
    name: str
    source_sha256: str
    source_size_bytes: int
    dtype: str | None
    """``None`` when the model was copied rather than converted."""
    files: dict[str, FileRecord] = field(default_factory=dict)
    """Path relative to the model directory (POSIX) -> what it held at pull time."""
    format_version: int = FORMAT_VERSION

    @property
    def lists_every_file(self) -> bool:
        """False for manifests of format 1, which hashed only the weights."""
        return self.format_version >= 2


def _record(raw: Mapping[str, Any]) -> FileRecord:
    return FileRecord(str(raw["sha256"]), int(raw["size"]), int(raw["mtime_ns"]))


def model_files(directory: Path) -> list[Path]:
    """Every file in ``directory`` (recursively) but the manifest itself, sorted."""
    skip = {directory / MANIFEST_NAME, directory / _WRITING}
    return sorted(p for p in directory.rglob("*") if p.is_file() and p not in skip)


def record_files(directory: Path, *, progress: bool = False) -> dict[str, FileRecord]:
    """Hash every file of ``directory`` and note its size and mtime."""
    records = {}
    for path in model_files(directory):
        stat = path.stat()
        records[path.relative_to(directory).as_posix()] = FileRecord(
            sha256_file(path, progress=progress), stat.st_size, stat.st_mtime_ns
        )
    return records


def write_manifest(directory: Path, manifest: Manifest) -> Path:
    """Write ``manifest`` into ``directory`` atomically (readers see the old or the new)."""
    path = directory / MANIFEST_NAME
    writing = directory / _WRITING
    writing.write_text(json.dumps(asdict(manifest), indent=2, sort_keys=True) + "\n")
    os.replace(writing, path)
    return path


def read_manifest(directory: Path) -> Manifest | None:
    """The manifest in ``directory``, or ``None`` if it has none."""
    path = directory / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text())
        version = int(raw["format_version"])
        files = {} if version < 2 else {str(k): _record(v) for k, v in raw["files"].items()}
        manifest = Manifest(
            name=str(raw["name"]),
            source_sha256=str(raw["source_sha256"]),
            source_size_bytes=int(raw["source_size_bytes"]),
            dtype=None if raw["dtype"] is None else str(raw["dtype"]),
            files=files,
            format_version=version,
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CatalogError(f"unreadable manifest {path}: {exc}") from exc
    if version > FORMAT_VERSION:
        raise CatalogError(f"{path} has format {version}; this system2 reads {FORMAT_VERSION}")
    return manifest


def verify_files(directory: Path, manifest: Manifest, *, full: bool = False) -> dict[str, int]:
    """Check every file of ``directory`` against ``manifest`` (see the module docstring).

    Returns the large files whose bytes were re-hashed and found intact although their stat
    moved, with the ``mtime_ns`` they had (``restamp`` records it, so the next load is quick).
    """
    if not manifest.lists_every_file or not manifest.files:
        raise CatalogError(f"the manifest in {directory} does not list the model's files")
    for path in model_files(directory):
        if path.relative_to(directory).as_posix() not in manifest.files:
            raise ChecksumMismatchError(str(path), "(not in the manifest)", sha256_file(path))
    moved: dict[str, int] = {}
    for rel, record in manifest.files.items():
        path = directory / rel
        try:
            stat = path.stat()
        except FileNotFoundError:
            raise ModelNotPulledError(manifest.name, f"{path} is missing") from None
        same_stat = stat.st_size == record.size and stat.st_mtime_ns == record.mtime_ns
        if same_stat and record.size >= FULL_HASH_BELOW and not full:
            continue
        actual = sha256_file(path)
        if actual != record.sha256:
            raise ChecksumMismatchError(str(path), record.sha256, actual)
        if not same_stat and record.size >= FULL_HASH_BELOW:
            moved[rel] = stat.st_mtime_ns
    return moved


def restamp(directory: Path, manifest: Manifest, moved: Mapping[str, int]) -> Manifest:
    """Record in ``directory``'s manifest the mtimes that ``verify_files`` found intact."""
    files = dict(manifest.files)
    for rel, mtime_ns in moved.items():
        files[rel] = replace(files[rel], mtime_ns=mtime_ns)
    updated = replace(manifest, files=files)
    write_manifest(directory, updated)
    return updated
