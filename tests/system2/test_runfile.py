"""Run files: crash leftovers are handled, foreign content is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from system2.runfile import (
    RunConfigMismatchError,
    RunFileWriter,
    prepare_run_file,
    read_run_file,
)

CONFIG = {"name": "x", "n": 2}


def _write(path: Path, *records: dict[str, object], tail: str = "") -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + tail)


def test_round_trip_keeps_the_last_record_per_key(tmp_path: Path) -> None:
    """Records read back keyed, the later of two records with one key winning."""
    path = tmp_path / "run.jsonl"
    assert prepare_run_file(path, CONFIG) is True
    with RunFileWriter(path) as writer:
        writer.write({"type": "header", **CONFIG})
        writer.write({"type": "item", "id": "a", "v": 1})
        writer.write({"type": "item", "id": "a", "v": 2})
    header, records = read_run_file(path, record_type="item", key=lambda r: r["id"])
    assert header == {"type": "header", **CONFIG}
    assert records == {"a": {"type": "item", "id": "a", "v": 2}}
    assert prepare_run_file(path, CONFIG) is False


def test_torn_tail_is_ignored_then_cut(tmp_path: Path) -> None:
    """A half-written last line is skipped when reading and removed before appending."""
    path = tmp_path / "run.jsonl"
    _write(path, {"type": "header", **CONFIG}, {"type": "item", "id": "a"}, tail='{"type": "it')
    _, records = read_run_file(path, record_type="item", key=lambda r: r["id"])
    assert list(records) == ["a"]
    prepare_run_file(path, CONFIG)
    assert path.read_text().endswith('"a"}\n')


def test_torn_header_starts_over(tmp_path: Path) -> None:
    """A crash while writing the header leaves a file that is reset, needing a header."""
    path = tmp_path / "run.jsonl"
    path.write_text('{"type": "header", "na')
    assert prepare_run_file(path, CONFIG) is True
    assert path.read_text() == ""


def test_other_config_and_foreign_records_are_refused(tmp_path: Path) -> None:
    """A different config names the differing keys; a wrong record type names the line."""
    path = tmp_path / "run.jsonl"
    _write(path, {"type": "header", **CONFIG}, {"type": "label", "id": "a"})
    with pytest.raises(RunConfigMismatchError, match="differing keys: n"):
        prepare_run_file(path, {"name": "x", "n": 3})
    with pytest.raises(ValueError, match=r"run\.jsonl:2: unexpected record type 'label'"):
        read_run_file(path, record_type="item", key=lambda r: r["id"])
    headless = tmp_path / "headless.jsonl"
    _write(headless, {"type": "item", "id": "a"})
    with pytest.raises(ValueError, match="no header line"):
        prepare_run_file(headless, CONFIG)
