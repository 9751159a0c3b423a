"""Wheels built on the spot for the catalog tests, and a fetcher that hands them over."""

from __future__ import annotations

import base64
import hashlib
import shutil
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from workers.catalog import PackageRef

__all__ = ["WheelShelf", "build_wheel", "flip_byte", "wheel_filename"]


def wheel_filename(distribution: str, version: str) -> str:
    return f"{distribution.replace('-', '_')}-{version}-py3-none-any.whl"


def build_wheel(folder: Path, distribution: str, version: str, files: Mapping[str, bytes]) -> Path:
    """A pure-Python wheel holding ``files`` (member name -> bytes) plus its dist-info."""
    info = f"{distribution.replace('-', '_')}-{version}.dist-info"
    members = dict(files)
    members[f"{info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n".encode()
    )
    members[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = []
    for name, data in members.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    members[f"{info}/RECORD"] = ("\n".join([*record, f"{info}/RECORD,,"]) + "\n").encode()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / wheel_filename(distribution, version)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def flip_byte(path: Path, offset: int) -> None:
    """Change the byte at ``offset`` of ``path`` (negative: from the end)."""
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


class WheelShelf:
    """Wheels a test built, and a ``WheelFetcher`` that copies them into the download folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.fetched: list[str] = []

    def add(self, distribution: str, version: str, files: Mapping[str, bytes]) -> PackageRef:
        """Build a wheel and return its reference, pinned to the wheel's sha256 as built."""
        path = build_wheel(self.folder, distribution, version, files)
        return PackageRef(distribution, version, hashlib.sha256(path.read_bytes()).hexdigest())

    def path(self, ref: PackageRef) -> Path:
        return self.folder / wheel_filename(ref.distribution, ref.version)

    def __call__(self, packages: Sequence[PackageRef], dest: Path) -> dict[PackageRef, Path]:
        fetched = {}
        for ref in packages:
            self.fetched.append(ref.requirement)
            fetched[ref] = Path(shutil.copy(self.path(ref), dest))
        return fetched
