"""Streaming join of a model's parts into one file, checked against the catalog's sha256."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import structlog
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from workers.catalog.entries import CatalogEntry
from workers.catalog.packages import Locator, locate_part, record_sha256
from workers.errors import ChecksumMismatchError

__all__ = ["assemble", "byte_progress", "join_files", "sha256_file"]

log = structlog.get_logger(__name__)

_BLOCK = 8 * 1024 * 1024


@contextlib.contextmanager
def byte_progress(label: str, total: int, *, enabled: bool) -> Iterator[Progress | None]:
    """A rich progress bar for ``total`` bytes on stderr, or ``None`` when disabled."""
    if not enabled:
        yield None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        bar.add_task(label, total=total)
        yield bar


def sha256_file(path: Path, *, progress: bool = False) -> str:
    digest = hashlib.sha256()
    size = path.stat().st_size
    with (
        byte_progress(f"sha256 {path.name}", size, enabled=progress) as bar,
        path.open("rb") as src,
    ):
        while block := src.read(_BLOCK):
            digest.update(block)
            if bar is not None:
                bar.advance(bar.task_ids[0], len(block))
    return digest.hexdigest()


def join_files(
    sources: Sequence[Path], dest: Path, *, total: int, label: str, progress: bool
) -> tuple[str, int]:
    """Concatenate ``sources`` into ``dest``; return its sha256 and size."""
    digest = hashlib.sha256()
    size = 0
    with byte_progress(label, total, enabled=progress) as bar, dest.open("wb") as out:
        for source in sources:
            with source.open("rb") as src:
                while block := src.read(_BLOCK):
                    out.write(block)
                    digest.update(block)
                    size += len(block)
                    if bar is not None:
                        bar.advance(bar.task_ids[0], len(block))
    return digest.hexdigest(), size


def _broken_part(entry: CatalogEntry, paths: Sequence[Path]) -> ChecksumMismatchError | None:
    """The first part whose bytes differ from its package's RECORD, if any."""
    for part, path in zip(entry.parts, paths, strict=True):
        expected = record_sha256(part)
        if expected is not None and (actual := sha256_file(path)) != expected:
            return ChecksumMismatchError(str(path), expected, actual)
    return None


def assemble(
    entry: CatalogEntry, dest: Path, *, locate: Locator = locate_part, progress: bool = True
) -> Path:
    """Join ``entry``'s parts into ``dest`` and verify its size and sha256.

    Writes through a ``.partial`` file, so ``dest`` only ever holds a verified file. An
    existing ``dest`` with the right size is re-hashed and reused.
    """
    if (
        dest.is_file()
        and dest.stat().st_size == entry.size_bytes
        and sha256_file(dest, progress=progress) == entry.sha256
    ):
        log.info("catalog.reuse_joined", model=entry.name, path=str(dest))
        return dest
    paths = [locate(part) for part in entry.parts]
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    try:
        actual, size = join_files(
            paths, partial, total=entry.size_bytes, label=f"join {entry.name}", progress=progress
        )
        if actual != entry.sha256 or size != entry.size_bytes:
            raise _broken_part(entry, paths) or ChecksumMismatchError(
                str(dest), entry.sha256, actual
            )
        os.replace(partial, dest)
    finally:
        partial.unlink(missing_ok=True)
    log.info("catalog.joined", model=entry.name, path=str(dest), bytes=size)
    return dest
