"""The identity of the running code: the package version and the git revision of its source.

Run files record it in their header (``system2.runfile``), so that resuming a run under
other code is caught instead of silently mixing records from two revisions.

The revision is the commit of the source tree when the packages run from a git checkout,
with ``-dirty`` appended when ``git status`` lists uncommitted changes to tracked files
under the package directories (untracked files do not count). Two different dirty states of
one commit cannot be told apart: both read ``<commit>-dirty`` (the tree is not hashed).
Installed from a wheel, with no checkout around the packages, the revision is None and only
the version tells code apart. Both are computed once per process (``running_code``).

Example:
    >>> from system2.code_version import CodeVersion
    >>> str(CodeVersion(version="0.1.0", revision="8cf20b3-dirty"))
    'system2 0.1.0 at revision 8cf20b3-dirty'
"""

from __future__ import annotations

import functools
import importlib.metadata
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PACKAGES", "CodeVersion", "git_revision", "running_code"]

PACKAGES = ("workers", "orchestrator", "policies", "system2")
"""The source directories of the distribution (``[tool.setuptools.packages.find]``)."""

_SOURCE_ROOT = Path(__file__).resolve().parent.parent
_GIT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class CodeVersion:
    """A package version and a code revision; None where it is not known."""

    version: str | None
    revision: str | None

    def as_json(self) -> dict[str, str | None]:
        """The form a run-file header records: ``{"version": ..., "revision": ...}``."""
        return {"version": self.version, "revision": self.revision}

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> CodeVersion:
        """Read back what ``as_json`` wrote (a missing or non-string field reads as None)."""
        version, revision = data.get("version"), data.get("revision")
        return cls(
            version=version if isinstance(version, str) else None,
            revision=revision if isinstance(revision, str) else None,
        )

    def __str__(self) -> str:
        version = self.version or "(unknown version)"
        revision = self.revision or "unknown (not a git checkout)"
        return f"system2 {version} at revision {revision}"


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(root), *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=_GIT_TIMEOUT_S,
    )
    return done.stdout.strip()


def git_revision(root: Path, packages: Sequence[str] = PACKAGES) -> str | None:
    """The commit checked out at ``root``, plus ``-dirty`` when tracked files under
    ``packages`` (directories relative to ``root``) have uncommitted changes; None when
    ``root`` is not the top of a git checkout or git cannot answer."""
    try:
        top = _git(root, "rev-parse", "--show-toplevel")
        if Path(top).resolve() != root.resolve():  # e.g. installed inside some other repo
            return None
        commit = _git(root, "rev-parse", "HEAD")
        changed = _git(root, "status", "--porcelain", "--untracked-files=no", "--", *packages)
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}-dirty" if changed else commit


@functools.cache
def running_code() -> CodeVersion:
    """The version and revision of the code running in this process (computed once)."""
    try:
        version: str | None = importlib.metadata.version("system2")
    except importlib.metadata.PackageNotFoundError:
        version = None
    return CodeVersion(version=version, revision=git_revision(_SOURCE_ROOT))
