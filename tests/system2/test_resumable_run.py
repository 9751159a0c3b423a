"""The resumable-run loop shared by evaluation, label collection and triplet synthesis."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Collection, Mapping
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from system2.code_version import CodeVersion, running_code
from system2.resumable_run import ResumableRun, bounded_map
from system2.runfile import RunCodeMismatchError, RunConfigMismatchError, RunFileLockedError

CONFIG = {"name": "toy", "k": (1, 2)}
CODE = CodeVersion(version="1.0", revision="aaa111")
OTHER = CodeVersion(version="1.0", revision="bbb222")


def _describe(records: Collection[Mapping[str, Any]]) -> str:
    return f"{sum(r['status'] == 'ok' for r in records)} ok of {len(records)}"


RUN: ResumableRun[str, str] = ResumableRun(
    record_type="thing",
    key=lambda unit: unit,
    record_key=lambda r: str(r["id"]),
    label="things",
    describe=_describe,
    log_event="test.things",
)


class Work:
    """Records each unit it is called on; fails the units in ``failing``, and raises
    KeyboardInterrupt on the ``interrupt_on``-th call."""

    def __init__(self, failing: Collection[str] = (), interrupt_on: int | None = None) -> None:
        self.calls: list[str] = []
        self.failing = set(failing)
        self.interrupt_on = interrupt_on

    async def __call__(self, unit: str) -> dict[str, Any]:
        self.calls.append(unit)
        if self.interrupt_on is not None and len(self.calls) == self.interrupt_on:
            raise KeyboardInterrupt
        status = "failed" if unit in self.failing else "ok"
        return {"type": "thing", "id": unit, "status": status, "attempt": len(self.calls)}


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


async def _run(work: Work, out: Path, units: list[str], **kwargs: Any) -> list[dict[str, Any]]:
    kwargs.setdefault("code", CODE)
    return await RUN.run(units, work, out, config=kwargs.pop("config", CONFIG), **kwargs)


async def test_a_fresh_run_writes_the_header_then_a_record_per_item(tmp_path: Path) -> None:
    """The header holds the config as JSON reads it back and the code that wrote it;
    records come back in item order."""
    out = tmp_path / "sub" / "run.jsonl"
    records = await _run(Work(), out, ["a", "b", "c"], progress=False)
    lines = _lines(out)
    assert lines[0] == {"type": "header", "name": "toy", "k": [1, 2], "code": CODE.as_json()}
    assert [r["id"] for r in lines[1:]] == ["a", "b", "c"]
    assert [r["id"] for r in records] == ["a", "b", "c"]
    assert RUN.read(out) == (lines[0], {r["id"]: r for r in lines[1:]})


async def test_resume_runs_only_the_items_not_yet_recorded(tmp_path: Path) -> None:
    """After an interruption, a rerun does the missing items only and returns them all."""
    out = tmp_path / "run.jsonl"
    with pytest.raises(KeyboardInterrupt):
        await _run(Work(interrupt_on=3), out, ["a", "b", "c", "d"], progress=False)
    assert [r["id"] for r in _lines(out)[1:]] == ["a", "b"]

    work = Work()
    records = await _run(work, out, ["a", "b", "c", "d"], progress=False)
    assert work.calls == ["c", "d"]
    assert [r["id"] for r in records] == ["a", "b", "c", "d"]
    assert sum(r["type"] == "header" for r in _lines(out)) == 1


async def test_failed_items_are_redone_only_with_retry_failed(tmp_path: Path) -> None:
    """A failed record settles its item unless ``retry_failed``; then the retry's record
    (the last line for that key) wins."""
    out = tmp_path / "run.jsonl"
    await _run(Work(failing={"b"}), out, ["a", "b"], progress=False)
    work = Work()
    records = await _run(work, out, ["a", "b"], progress=False)
    assert work.calls == []
    assert records[1]["status"] == "failed"

    records = await _run(work, out, ["a", "b"], progress=False, retry_failed=True)
    assert work.calls == ["b"]
    assert [r["status"] for r in records] == ["ok", "ok"]
    assert RUN.read(out)[1]["b"]["status"] == "ok"


async def test_another_config_is_refused_before_any_work(tmp_path: Path) -> None:
    """A file written under another config is left as it was and no item runs."""
    out = tmp_path / "run.jsonl"
    await _run(Work(), out, ["a"], progress=False)
    before = out.read_text()
    work = Work()
    with pytest.raises(RunConfigMismatchError, match="differing keys: k"):
        await _run(work, out, ["a", "b"], progress=False, config={**CONFIG, "k": 3})
    assert work.calls == []
    assert out.read_text() == before


async def test_by_default_the_header_records_the_running_version_and_revision(
    tmp_path: Path,
) -> None:
    """Without ``code``, the header carries the package version and the source revision."""
    out = tmp_path / "run.jsonl"
    await RUN.run(["a"], Work(), out, config=CONFIG, progress=False)
    code = _lines(out)[0]["code"]
    assert code == running_code().as_json()
    assert code["version"] is not None


async def test_a_resume_under_other_code_is_refused_naming_both(tmp_path: Path) -> None:
    """A file written by another revision is refused before any work, naming both."""
    out = tmp_path / "run.jsonl"
    await _run(Work(), out, ["a"], progress=False)
    before = out.read_text()
    work = Work()
    with pytest.raises(RunCodeMismatchError, match=r"revision aaa111.*revision bbb222"):
        await _run(work, out, ["a", "b"], progress=False, code=OTHER)
    assert work.calls == []
    assert out.read_text() == before


async def test_allow_mixed_resumes_and_marks_where_the_code_changed(tmp_path: Path) -> None:
    """With ``allow_mixed`` the missing items run, after a ``code_change`` line naming the
    new code; the file reads back whole and resumes under the new code without asking."""
    out = tmp_path / "run.jsonl"
    await _run(Work(), out, ["a"], progress=False)
    work = Work()
    records = await _run(work, out, ["a", "b"], progress=False, code=OTHER, allow_mixed=True)
    assert work.calls == ["b"]
    assert [r["id"] for r in records] == ["a", "b"]
    assert [line["type"] for line in _lines(out)] == ["header", "thing", "code_change", "thing"]
    assert _lines(out)[2]["code"] == OTHER.as_json()
    assert list(RUN.read(out)[1]) == ["a", "b"]
    await _run(Work(), out, ["a", "b", "c"], progress=False, code=OTHER)
    assert sum(line["type"] == "code_change" for line in _lines(out)) == 1


async def test_an_old_header_without_code_is_refused_unless_allowed(tmp_path: Path) -> None:
    """A run file from before code was recorded is an unknown revision: refused, then
    resumed with ``allow_mixed``."""
    out = tmp_path / "run.jsonl"
    old = [
        {"type": "header", "name": "toy", "k": [1, 2]},
        {"type": "thing", "id": "a", "status": "ok"},
    ]
    out.write_text("".join(json.dumps(line) + "\n" for line in old))
    with pytest.raises(RunCodeMismatchError, match="unknown revision"):
        await _run(Work(), out, ["a", "b"], progress=False)
    work = Work()
    await _run(work, out, ["a", "b"], progress=False, allow_mixed=True)
    assert work.calls == ["b"]
    assert _lines(out)[:2] == old


async def test_a_complete_file_is_read_whatever_code_wrote_it_but_not_under_another_config(
    tmp_path: Path,
) -> None:
    """Nothing is left to append, so other (or unknown) code is no reason to refuse: the
    records come back and the file is untouched; another config is still refused."""
    out = tmp_path / "run.jsonl"
    await _run(Work(), out, ["a", "b"], progress=False)
    before = out.read_text()
    work = Work()
    records = await _run(work, out, ["b", "a"], progress=False, code=OTHER)
    assert work.calls == []
    assert [r["id"] for r in records] == ["b", "a"]
    assert out.read_text() == before
    with pytest.raises(RunConfigMismatchError, match="differing keys: k"):
        await _run(Work(), out, ["a", "b"], progress=False, code=OTHER, config={**CONFIG, "k": 3})
    with pytest.raises(RunCodeMismatchError):  # one item left: appending needs the same code
        await _run(Work(), out, ["a", "b", "c"], progress=False, code=OTHER)


async def test_a_second_run_on_the_file_is_refused_while_the_first_runs(tmp_path: Path) -> None:
    """Two runs in one process: the second is refused at once while the first holds the
    file, and succeeds once the first has ended."""
    out = tmp_path / "run.jsonl"
    started, release = asyncio.Event(), asyncio.Event()

    async def slow(unit: str) -> dict[str, Any]:
        started.set()
        await release.wait()
        return {"type": "thing", "id": unit, "status": "ok"}

    first = asyncio.ensure_future(RUN.run(["a"], slow, out, config=CONFIG, progress=False))
    await started.wait()
    with pytest.raises(RunFileLockedError, match="in use"):
        await _run(Work(), out, ["a", "b"], progress=False)
    release.set()
    await first
    work = Work()
    await RUN.run(["a", "b"], work, out, config=CONFIG, progress=False)
    assert work.calls == ["b"]


async def test_a_run_is_refused_while_another_process_holds_the_file(tmp_path: Path) -> None:
    """Another process holding the run file's lock refuses a run; once that process has
    died (killed, no clean exit), the run goes ahead."""
    out = tmp_path / "run.jsonl"
    holder = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import fcntl, sys; f = open(sys.argv[1], 'a'); "
        "fcntl.flock(f, fcntl.LOCK_EX); print('locked', flush=True); sys.stdin.read()",
        str(out),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None
        assert (await holder.stdout.readline()).strip() == b"locked"
        work = Work()
        with pytest.raises(RunFileLockedError):
            await _run(work, out, ["a"], progress=False)
        assert work.calls == []
    finally:
        holder.kill()
        await holder.communicate()
    assert [r["id"] for r in await _run(Work(), out, ["a"], progress=False)] == ["a"]


@pytest.mark.parametrize(
    ("units", "config", "concurrency", "message"),
    [
        (["a", "a"], CONFIG, 1, "item ids are not unique"),
        (["a"], {"type": "x"}, 1, "must not contain the key 'type'"),
        (["a"], {"code": "x"}, 1, "must not contain the key 'code'"),
        (["a"], CONFIG, 0, "concurrency must be at least 1"),
    ],
)
async def test_bad_arguments_are_refused_before_the_file_is_touched(
    tmp_path: Path, units: list[str], config: dict[str, Any], concurrency: int, message: str
) -> None:
    """Duplicate keys, a config with ``type`` or ``code`` or no concurrency raise; nothing
    is written."""
    out = tmp_path / "run.jsonl"
    with pytest.raises(ValueError, match=message):
        await _run(Work(), out, units, config=config, concurrency=concurrency, progress=False)
    assert not out.exists()


async def test_concurrent_items_are_each_recorded_once(tmp_path: Path) -> None:
    """With several items in flight, every item still gets exactly one record."""
    out = tmp_path / "run.jsonl"
    units = [f"u{i}" for i in range(7)]
    records = await _run(Work(), out, units, progress=False, concurrency=3)
    assert [r["id"] for r in records] == units
    assert sorted(r["id"] for r in _lines(out)[1:]) == sorted(units)


async def test_the_progress_bar_shows_the_live_description(tmp_path: Path) -> None:
    """The bar is labelled by the run and described from the records done, resumed ones
    included."""
    out = tmp_path / "run.jsonl"
    await _run(Work(failing={"b"}), out, ["a", "b"], progress=False)
    buffer = StringIO()
    console = Console(file=buffer, force_terminal=False, width=120)
    await _run(Work(), out, ["a", "b", "c"], progress=True, console=console)
    shown = buffer.getvalue()
    assert "things" in shown
    assert "2 ok of 3" in shown


async def test_bounded_map_keeps_at_most_concurrency_in_flight() -> None:
    """No more than ``concurrency`` units run at once, and every unit's result comes back."""
    in_flight, peak = 0, 0

    async def work(unit: int) -> dict[str, Any]:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.001 * (unit % 3))
        in_flight -= 1
        return {"unit": unit}

    results = [pair async for pair in bounded_map(list(range(10)), work, 2)]
    assert peak == 2
    assert sorted(unit for unit, _ in results) == list(range(10))
    assert all(record == {"unit": unit} for unit, record in results)
