"""The running code's identity: the package version and the git revision of its source."""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
from pathlib import Path

import pytest

from system2.code_version import CodeVersion, git_revision, running_code

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A git checkout with one committed file in a package directory and one outside."""
    (tmp_path / "system2").mkdir()
    (tmp_path / "system2" / "a.py").write_text("x = 1\n")
    (tmp_path / "notes.txt").write_text("notes\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "first")
    return tmp_path


@needs_git
def test_a_clean_checkout_reads_as_its_commit(checkout: Path) -> None:
    """Untracked files and changes outside the package directories leave it clean."""
    (checkout / "system2" / "new.py").write_text("y = 2\n")
    (checkout / "notes.txt").write_text("changed\n")
    assert git_revision(checkout, ("system2",)) == _git(checkout, "rev-parse", "HEAD")


@needs_git
def test_a_changed_tracked_file_marks_the_revision_dirty(checkout: Path) -> None:
    """Any uncommitted change to a tracked package file appends ``-dirty``."""
    (checkout / "system2" / "a.py").write_text("x = 2\n")
    assert git_revision(checkout, ("system2",)) == _git(checkout, "rev-parse", "HEAD") + "-dirty"


@needs_git
def test_no_checkout_or_a_checkout_above_is_no_revision(checkout: Path, tmp_path: Path) -> None:
    """A directory outside git, or inside a checkout whose top is elsewhere, has none."""
    outside = tmp_path.parent / f"{tmp_path.name}-plain"
    outside.mkdir()
    assert git_revision(outside) is None
    assert git_revision(checkout / "system2") is None


def test_the_running_code_is_the_installed_version_at_the_source_revision() -> None:
    """The version is the distribution's; the revision, in a checkout, its HEAD."""
    code = running_code()
    assert code is running_code()  # computed once
    assert code.version == importlib.metadata.version("system2")
    source = Path(__file__).resolve().parents[2]
    if shutil.which("git") and (source / ".git").exists():
        assert code.revision is not None
        assert code.revision.removesuffix("-dirty") == _git(source, "rev-parse", "HEAD")


def test_json_round_trip_and_description() -> None:
    """What a header records reads back equal; unknowns are said as such."""
    code = CodeVersion(version="0.1.0", revision="abc-dirty")
    assert CodeVersion.from_json(code.as_json()) == code
    assert CodeVersion.from_json({}) == CodeVersion(version=None, revision=None)
    assert str(CodeVersion(version="0.1.0", revision=None)) == (
        "system2 0.1.0 at revision unknown (not a git checkout)"
    )
