"""Run files: crash leftovers are handled, foreign content, other code and a second writer
are refused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from system2.code_version import CodeVersion
from system2.runfile import (
    RunCodeMismatchError,
    RunConfigMismatchError,
    RunFileLockedError,
    RunFileWriter,
    prepare_run_file,
    read_run_file,
    run_file_lock,
)

CONFIG = {"name": "x", "n": 2}
CODE = CodeVersion(version="1.0", revision="aaa111")
OTHER = CodeVersion(version="1.0", revision="bbb222-dirty")
HEADER = {"type": "header", **CONFIG, "code": {"version": "1.0", "revision": "aaa111"}}


def _write(path: Path, *records: dict[str, object], tail: str = "") -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + tail)


def _read(path: Path) -> tuple[dict[str, object] | None, dict[str, dict[str, object]]]:
    return read_run_file(path, record_type="item", key=lambda r: str(r["id"]))


def test_round_trip_keeps_the_last_record_per_key(tmp_path: Path) -> None:
    """Records read back keyed, the later of two records with one key winning."""
    path = tmp_path / "run.jsonl"
    assert prepare_run_file(path, CONFIG, code=CODE) == HEADER
    with RunFileWriter(path) as writer:
        writer.write(HEADER)
        writer.write({"type": "item", "id": "a", "v": 1})
        writer.write({"type": "item", "id": "a", "v": 2})
    header, records = _read(path)
    assert header == HEADER
    assert records == {"a": {"type": "item", "id": "a", "v": 2}}
    assert prepare_run_file(path, CONFIG, code=CODE) is None


def test_the_header_records_the_running_code_by_default(tmp_path: Path) -> None:
    """Without ``code``, a new header carries the running package version and revision."""
    from system2.code_version import running_code

    header = prepare_run_file(tmp_path / "run.jsonl", CONFIG)
    assert header is not None
    assert header["code"] == running_code().as_json()


def test_torn_tail_is_ignored_then_cut(tmp_path: Path) -> None:
    """A half-written last line is skipped when reading and removed before appending."""
    path = tmp_path / "run.jsonl"
    _write(path, HEADER, {"type": "item", "id": "a"}, tail='{"type": "it')
    _, records = _read(path)
    assert list(records) == ["a"]
    prepare_run_file(path, CONFIG, code=CODE)
    assert path.read_text().endswith('"a"}\n')


def test_torn_header_starts_over(tmp_path: Path) -> None:
    """A crash while writing the header leaves a file that is reset, needing a header."""
    path = tmp_path / "run.jsonl"
    path.write_text('{"type": "header", "na')
    assert prepare_run_file(path, CONFIG, code=CODE) == HEADER
    assert path.read_text() == ""


def test_other_config_and_foreign_records_are_refused(tmp_path: Path) -> None:
    """A different config names the differing keys; a wrong record type names the line."""
    path = tmp_path / "run.jsonl"
    _write(path, HEADER, {"type": "label", "id": "a"})
    with pytest.raises(RunConfigMismatchError, match="differing keys: n"):
        prepare_run_file(path, {"name": "x", "n": 3}, code=CODE)
    with pytest.raises(ValueError, match=r"run\.jsonl:2: unexpected record type 'label'"):
        _read(path)
    headless = tmp_path / "headless.jsonl"
    _write(headless, {"type": "item", "id": "a"})
    with pytest.raises(ValueError, match="no header line"):
        prepare_run_file(headless, CONFIG, code=CODE)


def test_other_code_is_refused_naming_both_and_left_as_it_was(tmp_path: Path) -> None:
    """A file written by another revision is refused, the message naming both revisions
    and the two ways on; the file (torn tail included) is not touched."""
    path = tmp_path / "run.jsonl"
    _write(path, HEADER, {"type": "item", "id": "a"}, tail='{"type": "it')
    before = path.read_text()
    with pytest.raises(RunCodeMismatchError) as refused:
        prepare_run_file(path, CONFIG, code=OTHER)
    message = str(refused.value)
    assert "system2 1.0 at revision aaa111" in message
    assert "system2 1.0 at revision bbb222-dirty" in message
    assert "--out" in message
    assert "--allow-mixed" in message
    assert (refused.value.recorded, refused.value.running) == (CODE, OTHER)
    with pytest.raises(RunCodeMismatchError, match=r"system2 2\.0 at revision aaa111"):
        prepare_run_file(path, CONFIG, code=CodeVersion(version="2.0", revision="aaa111"))
    assert path.read_text() == before


def test_allow_mixed_resumes_and_marks_the_code_change(tmp_path: Path) -> None:
    """With ``allow_mixed`` the resume proceeds and returns a ``code_change`` line to write
    first; readers skip it, and the next resume compares against the new code."""
    path = tmp_path / "run.jsonl"
    _write(path, HEADER, {"type": "item", "id": "a"})
    change = prepare_run_file(path, CONFIG, code=OTHER, allow_mixed=True)
    assert change == {"type": "code_change", "code": OTHER.as_json()}
    with RunFileWriter(path) as writer:
        writer.write(change)
        writer.write({"type": "item", "id": "b"})
    header, records = _read(path)
    assert header == HEADER
    assert list(records) == ["a", "b"]
    assert prepare_run_file(path, CONFIG, code=OTHER) is None
    with pytest.raises(RunCodeMismatchError, match=r"written by system2 1\.0 at revision bbb"):
        prepare_run_file(path, CONFIG, code=CODE)


def test_settings_added_by_newer_code_resume_only_when_mixing_is_allowed(
    tmp_path: Path,
) -> None:
    """A nested setting the file's code did not have yet is named and refused, unless
    ``allow_mixed``; a changed or removed setting is refused either way."""
    path = tmp_path / "run.jsonl"
    old = {"name": "x", "strategy": {"n": 2}}
    _write(path, {"type": "header", **old, "code": CODE.as_json()}, {"type": "item", "id": "a"})
    newer = {"name": "x", "strategy": {"n": 2, "tie_break": "first"}}
    with pytest.raises(RunConfigMismatchError, match="before these settings existed") as refused:
        prepare_run_file(path, newer, code=OTHER)
    assert refused.value.keys == ["strategy.tie_break"]
    assert prepare_run_file(path, newer, code=OTHER, allow_mixed=True) is not None
    changed = {"name": "x", "strategy": {"n": 3, "tie_break": "first"}}
    with pytest.raises(RunConfigMismatchError, match=r"differing keys: strategy\.n"):
        prepare_run_file(path, changed, code=OTHER, allow_mixed=True)
    with pytest.raises(RunConfigMismatchError, match="differing keys: strategy"):
        prepare_run_file(path, {"name": "x"}, code=CODE, allow_mixed=True)


def test_a_header_without_code_is_an_unknown_revision(tmp_path: Path) -> None:
    """A header from before code was recorded is refused as an unknown revision unless
    ``allow_mixed``; it still reads as before."""
    path = tmp_path / "run.jsonl"
    _write(path, {"type": "header", **CONFIG}, {"type": "item", "id": "a"})
    with pytest.raises(RunCodeMismatchError, match="unknown revision") as refused:
        prepare_run_file(path, CONFIG, code=CODE)
    assert refused.value.recorded is None
    assert "system2 1.0 at revision aaa111" in str(refused.value)
    change = prepare_run_file(path, CONFIG, code=CODE, allow_mixed=True)
    assert change == {"type": "code_change", "code": CODE.as_json()}
    assert _read(path) == ({"type": "header", **CONFIG}, {"a": {"type": "item", "id": "a"}})


def test_a_second_lock_in_this_process_is_refused_until_released(tmp_path: Path) -> None:
    """The lock is per open file: a second holder, even in this process, is refused at
    once; after the first lets go it is granted."""
    path = tmp_path / "run.jsonl"
    with (
        run_file_lock(path),
        pytest.raises(RunFileLockedError, match="in use"),
        run_file_lock(path),
    ):
        pass
    with run_file_lock(path):
        pass


def test_another_process_holding_the_lock_refuses_until_it_dies(tmp_path: Path) -> None:
    """While another process holds the run file's flock, taking it is refused; once that
    process is killed (no clean exit), the lock is free."""
    path = tmp_path / "run.jsonl"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys; f = open(sys.argv[1], 'a'); "
            "fcntl.flock(f, fcntl.LOCK_EX); print('locked', flush=True); sys.stdin.read()",
            str(path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunFileLockedError), run_file_lock(path):
            pass
    finally:
        holder.kill()
        holder.communicate()
    with run_file_lock(path):
        pass
