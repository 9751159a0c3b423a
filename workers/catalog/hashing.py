"""Streaming sha256 of files and byte streams, with an optional progress bar on stderr."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

__all__ = ["BLOCK_BYTES", "byte_progress", "copy_hashed", "sha256_file"]

BLOCK_BYTES = 8 * 1024 * 1024


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


def copy_hashed(
    src: IO[bytes], out: IO[bytes] | None, digest: hashlib._Hash, bar: Progress | None = None
) -> int:
    """Copy ``src`` to ``out`` (``None``: only read it), feeding ``digest``; return the size."""
    size = 0
    while block := src.read(BLOCK_BYTES):
        if out is not None:
            out.write(block)
        digest.update(block)
        size += len(block)
        if bar is not None:
            bar.advance(bar.task_ids[0], len(block))
    return size


def sha256_file(path: Path, *, progress: bool = False) -> str:
    digest = hashlib.sha256()
    size = path.stat().st_size
    with (
        byte_progress(f"sha256 {path.name}", size, enabled=progress) as bar,
        path.open("rb") as src,
    ):
        copy_hashed(src, None, digest, bar)
    return digest.hexdigest()
