"""Installing the packages that carry model files, and finding those files without importing.

The chunk packages are untrusted: their files are found through the installed distribution's
RECORD (``importlib.metadata``), never by importing their ``__init__`` modules.
"""

from __future__ import annotations

import base64
import importlib
import importlib.metadata as md
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import structlog

from workers.catalog.entries import PackageFile, PackageRef
from workers.errors import PullError

__all__ = ["Locator", "ensure_installed", "installed_version", "locate_part", "record_sha256"]

log = structlog.get_logger(__name__)

Locator = Callable[[PackageFile], Path]
"""Maps a package file to its path on disk (injectable for tests)."""


def installed_version(distribution: str) -> str | None:
    try:
        return md.version(distribution)
    except md.PackageNotFoundError:
        return None


def ensure_installed(packages: Iterable[PackageRef]) -> list[PackageRef]:
    """``pip install --no-deps`` every package not already installed at its pinned version.

    Returns the packages that were installed.
    """
    missing = [p for p in packages if installed_version(p.distribution) != p.version]
    if not missing:
        return []
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--disable-pip-version-check"]
    cmd += [p.requirement for p in missing]
    log.info("catalog.pip_install", packages=[p.requirement for p in missing])
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise PullError(f"pip install failed (exit {done.returncode}):\n{tail}")
    importlib.invalidate_caches()  # so importlib.metadata sees the new dist-info folders
    return missing


def _find(part: PackageFile) -> tuple[md.Distribution, md.PackagePath]:
    try:
        dist = md.distribution(part.distribution)
    except md.PackageNotFoundError as exc:
        raise PullError(f"package {part.distribution} is not installed") from exc
    if dist.version != part.version:
        raise PullError(
            f"package {part.distribution} is at {dist.version}, the catalog needs {part.version}"
        )
    for file in dist.files or ():
        if file.as_posix() == part.path_in_distribution:
            return dist, file
    raise PullError(f"{part.path_in_distribution} is not listed in {part.distribution}'s RECORD")


def locate_part(part: PackageFile) -> Path:
    """The on-disk path of ``part`` in its installed distribution."""
    dist, file = _find(part)
    path = Path(str(dist.locate_file(file)))
    if not path.is_file():
        raise PullError(f"{path} ({part.distribution}) is listed in RECORD but missing on disk")
    return path


def record_sha256(part: PackageFile) -> str | None:
    """The hex sha256 that ``part``'s RECORD lists, or ``None`` if unknown.

    RECORD ships in the same package as the file, so this only detects on-disk damage; it is
    used to say which part is broken once the joined file fails the catalog's checksum.
    """
    try:
        _, file = _find(part)
    except PullError:
        return None
    if file.hash is None or file.hash.mode != "sha256":
        return None
    digest = base64.urlsafe_b64decode(file.hash.value + "=" * (-len(file.hash.value) % 4))
    return digest.hex()
