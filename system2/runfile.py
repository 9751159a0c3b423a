"""Run files: append-only JSONL that survives crashes, so long runs can resume.

Line 1 is a header: ``{"type": "header", **config, "code": {"version": ..., "revision":
...}}``, the config of the run and the code that wrote it (``system2.code_version``). Every
later line is one record of a single type, written and fsynced as soon as its unit of work
is done. A crash can leave only a torn last line (or a torn header): reading ignores it,
preparing cuts it.

Resuming is refused, before anything is written, when the file was written with another
config (naming the keys that differ) or by other code: another version or revision, or
an unknown one (a header from before the ``code`` field). With ``allow_mixed`` a resume
under other code proceeds and first appends ``{"type": "code_change", "code": {...}}``:
the records after that line were written by that code. Readers skip these lines, so a
file reads the same, mixed or not, old header or new. One run at a time appends to a file:
the run holds ``run_file_lock`` on it (readers do not lock).

Errors::

    ValueError
    └── RunFileError               a run file this run must not append to
        ├── RunConfigMismatchError written with another config
        ├── RunCodeMismatchError   written by other (or unknown) code
        └── RunFileLockedError     another run is appending to it

Evaluation, router-label collection and verifier-triplet synthesis all write run files,
through ``system2.resumable_run``.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO, TypeVar

import structlog

from system2.code_version import CodeVersion, running_code

__all__ = [
    "CODE_CHANGE",
    "CODE_KEY",
    "RunCodeMismatchError",
    "RunConfigMismatchError",
    "RunFileError",
    "RunFileLockedError",
    "RunFileWriter",
    "config_differences",
    "jsonable",
    "prepare_run_file",
    "read_run_file",
    "run_file_lock",
]

log = structlog.get_logger(__name__)

K = TypeVar("K", bound=Hashable)

CODE_KEY = "code"
"""The header's key for the code that wrote the file (and the ``code_change`` line's)."""
CODE_CHANGE = "code_change"
"""The record type of the line that says the records after it were written by other code."""
_CODE_CHANGE_PREFIX = json.dumps({"type": CODE_CHANGE})[:-1].encode()

_AS_ASKED = "use a new --out for a fresh run, or --allow-mixed (allow_mixed=True) to resume"


class RunFileError(ValueError):
    """A run file this run must not append to."""


class RunConfigMismatchError(RunFileError):
    """The output file was written by a run with a different configuration."""

    def __init__(self, path: Path, keys: Sequence[str], *, added_only: bool = False) -> None:
        self.keys = list(keys)
        if added_only:
            message = (
                f"{path} was written before these settings existed: {', '.join(self.keys)} "
                f"(code since then added them); {_AS_ASKED} with them"
            )
        else:
            message = (
                f"{path} was written with a different run_config (differing keys: "
                f"{', '.join(self.keys)}); use a new output file or the same configuration"
            )
        super().__init__(message)


def config_differences(
    found: Mapping[str, Any], config: Mapping[str, Any], prefix: str = ""
) -> tuple[list[str], list[str]]:
    """The dotted keys whose values differ between a file's run config (``found``) and this
    run's, and apart from those the keys only this run's has (settings added to the code
    since the file was written, which ``allow_mixed`` accepts)."""
    differing: list[str] = []
    added: list[str] = []
    for key in sorted(found.keys() | config.keys()):
        name = f"{prefix}{key}"
        if key not in found:
            added.append(name)
        elif key not in config:
            differing.append(name)
        elif isinstance(found[key], Mapping) and isinstance(config[key], Mapping):
            inner_differing, inner_added = config_differences(found[key], config[key], name + ".")
            differing += inner_differing
            added += inner_added
        elif found[key] != config[key]:
            differing.append(name)
    return differing, added


class RunCodeMismatchError(RunFileError):
    """The output file was written by another version or revision of the code, or by an
    unknown one (``recorded`` is None: a header from before code was recorded)."""

    def __init__(self, path: Path, recorded: CodeVersion | None, running: CodeVersion) -> None:
        self.recorded = recorded
        self.running = running
        written = (
            str(recorded)
            if recorded is not None
            else "an unknown revision of system2 (its header predates version and revision records)"
        )
        super().__init__(
            f"{path} was written by {written}; this is {running}. Resuming would mix records "
            f"from two revisions: {_AS_ASKED} anyway (the file then marks where the code "
            "changed)"
        )


class RunFileLockedError(RunFileError):
    """Another run (in this process or another) is appending to the file."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            f"{path} is in use: another run is appending to it. Wait for that run to end, "
            "or use a new --out"
        )


def jsonable(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` as it reads back from JSON (tuples become lists, and so on), so a header
    written from it compares equal to the same config on resume."""
    result: dict[str, Any] = json.loads(json.dumps(dict(config)))
    return result


def read_run_file(
    path: Path, *, record_type: str, key: Callable[[dict[str, Any]], K]
) -> tuple[dict[str, Any] | None, dict[K, dict[str, Any]]]:
    """The header and the records (the last one per ``key``) of a run file; ``code_change``
    lines are skipped."""
    header: dict[str, Any] | None = None
    records: dict[K, dict[str, Any]] = {}
    if not path.exists():
        return header, records
    lines = path.read_text(encoding="utf-8").splitlines()
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if lineno == len(lines):
                log.warning("runfile.torn_line_ignored", path=str(path), line=lineno)
                continue
            raise ValueError(f"{path}:{lineno}: not a JSON line") from None
        kind = record.get("type") if isinstance(record, dict) else None
        if kind == "header" and lineno == 1:
            header = record
        elif kind == record_type:
            records[key(record)] = record
        elif kind != CODE_CHANGE:
            raise ValueError(f"{path}:{lineno}: unexpected record type {kind!r}")
    return header, records


def prepare_run_file(
    path: Path,
    config: Mapping[str, Any],
    *,
    code: CodeVersion | None = None,
    allow_mixed: bool = False,
    appending: bool = True,
) -> dict[str, Any] | None:
    """Make ``path`` ready for appending under ``config`` by ``code`` (default: the running
    code); the line to write before the first new record: the header for a new file, a
    ``code_change`` line when resuming under other code with ``allow_mixed``, else None.
    With ``appending`` False (a complete file, only to be read) the code that wrote it is
    not checked and the file is not touched; its config still must match.

    An existing file must carry the same config and, unless ``allow_mixed``, have been
    written by the same code (its last ``code_change`` line's, else its header's); a torn
    header is dropped (start over) and a torn last line is cut, so the next record starts on
    a fresh line. A refused file is left as it was. Hold ``run_file_lock`` around this and
    the writing that follows.
    """
    code = code if code is not None else running_code()
    data = path.read_bytes() if path.exists() else b""
    if not data:
        return _header(config, code)
    if b"\n" not in data and data.startswith(b'{"type": "header"'):
        path.write_bytes(b"")
        return _header(config, code)
    header = _first_line_header(data)
    if header is None:
        raise ValueError(f"{path} has records but no header line; refusing to append")
    found = {k: v for k, v in header.items() if k not in ("type", CODE_KEY)}
    differing, added = config_differences(found, config)
    if differing or (added and not allow_mixed):
        raise RunConfigMismatchError(path, sorted(differing + added), added_only=not differing)
    if added:
        log.warning("runfile.new_settings", path=str(path), added=added)
    if not appending:
        return None
    recorded = _recorded_code(header, data)
    opening: dict[str, Any] | None = None
    if recorded != code:
        if not allow_mixed:
            raise RunCodeMismatchError(path, recorded, code)
        log.warning(
            "runfile.mixed_code", path=str(path), recorded=str(recorded or "unknown"), now=str(code)
        )
        opening = {"type": CODE_CHANGE, CODE_KEY: code.as_json()}
    if not data.endswith(b"\n"):
        with path.open("r+b") as f:
            f.truncate(data.rfind(b"\n") + 1)
    return opening


def _header(config: Mapping[str, Any], code: CodeVersion) -> dict[str, Any]:
    return {"type": "header", **config, CODE_KEY: code.as_json()}


def _first_line_header(data: bytes) -> dict[str, Any] | None:
    try:
        first = json.loads(data.split(b"\n", 1)[0])
    except json.JSONDecodeError:
        return None
    return first if isinstance(first, dict) and first.get("type") == "header" else None


def _recorded_code(header: Mapping[str, Any], data: bytes) -> CodeVersion | None:
    """The code that wrote the last records: the last ``code_change`` line's, else the
    header's; None when the header predates code records."""
    latest = header.get(CODE_KEY)
    for line in data.split(b"\n"):
        if line.startswith(_CODE_CHANGE_PREFIX):
            try:
                latest = json.loads(line).get(CODE_KEY)
            except json.JSONDecodeError:  # a torn last line
                continue
    return CodeVersion.from_json(latest) if isinstance(latest, dict) else None


@contextmanager
def run_file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) while the block runs; raise
    ``RunFileLockedError`` at once if another run holds it.

    The lock is ``flock`` on the run file itself: it is released when the block exits and,
    since it belongs to the open file, when the process dies (a crash, SIGKILL) too.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunFileLockedError(path) from None
        yield
    finally:
        os.close(fd)


class RunFileWriter:
    """Appends records, each durable (flushed and fsynced) before ``write`` returns."""

    def __init__(self, path: Path) -> None:
        self._f: TextIO = path.open("a", encoding="utf-8")

    def write(self, record: Mapping[str, Any]) -> None:
        self._f.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> RunFileWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
