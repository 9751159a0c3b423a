"""Run files: append-only JSONL that survives crashes, so long runs can resume.

Line 1 is a header (``{"type": "header", **config}``); every later line is one record of a
single type, written and fsynced as soon as its unit of work is done. A crash can leave
only a torn last line (or a torn header): reading ignores it, preparing cuts it. A file
written with another config is refused, naming the keys that differ.

Evaluation, router-label collection and verifier-triplet synthesis all write run files,
through ``system2.resumable_run``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Hashable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO, TypeVar

import structlog

__all__ = [
    "RunConfigMismatchError",
    "RunFileWriter",
    "jsonable",
    "prepare_run_file",
    "read_run_file",
]

log = structlog.get_logger(__name__)

K = TypeVar("K", bound=Hashable)


class RunConfigMismatchError(ValueError):
    """The output file was written by a run with a different configuration."""

    def __init__(self, path: Path, keys: Sequence[str]) -> None:
        self.keys = list(keys)
        super().__init__(
            f"{path} was written with a different run_config (differing keys: "
            f"{', '.join(self.keys)}); use a new output file or the same configuration"
        )


def jsonable(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` as it reads back from JSON (tuples become lists, and so on), so a header
    written from it compares equal to the same config on resume."""
    result: dict[str, Any] = json.loads(json.dumps(dict(config)))
    return result


def read_run_file(
    path: Path, *, record_type: str, key: Callable[[dict[str, Any]], K]
) -> tuple[dict[str, Any] | None, dict[K, dict[str, Any]]]:
    """The header and the records (the last one per ``key``) of a run file."""
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
        else:
            raise ValueError(f"{path}:{lineno}: unexpected record type {kind!r}")
    return header, records


def prepare_run_file(path: Path, config: Mapping[str, Any]) -> bool:
    """Make ``path`` ready for appending under ``config``; True when it needs a header.

    An existing file must carry the same config; a torn header is dropped (start over)
    and a torn last line is cut, so the next record starts on a fresh line.
    """
    data = path.read_bytes() if path.exists() else b""
    if not data:
        return True
    if b"\n" not in data and data.startswith(b'{"type": "header"'):
        path.write_bytes(b"")
        return True
    header = _first_line_header(data)
    if header is None:
        raise ValueError(f"{path} has records but no header line; refusing to append")
    found = {k: v for k, v in header.items() if k != "type"}
    differing = sorted(k for k in found.keys() | config.keys() if found.get(k) != config.get(k))
    if differing:
        raise RunConfigMismatchError(path, differing)
    if not data.endswith(b"\n"):
        with path.open("r+b") as f:
            f.truncate(data.rfind(b"\n") + 1)
    return False


def _first_line_header(data: bytes) -> dict[str, Any] | None:
    try:
        first = json.loads(data.split(b"\n", 1)[0])
    except json.JSONDecodeError:
        return None
    return first if isinstance(first, dict) and first.get("type") == "header" else None


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
