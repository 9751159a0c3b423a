"""The resumable-run loop shared by evaluation, label collection and triplet synthesis."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Collection, Mapping
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from system2.resumable_run import ResumableRun, bounded_map
from system2.runfile import RunConfigMismatchError

CONFIG = {"name": "toy", "k": (1, 2)}


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
    return await RUN.run(units, work, out, config=kwargs.pop("config", CONFIG), **kwargs)


async def test_a_fresh_run_writes_the_header_then_a_record_per_item(tmp_path: Path) -> None:
    """The header holds the config as JSON reads it back; records come back in item order."""
    out = tmp_path / "sub" / "run.jsonl"
    records = await _run(Work(), out, ["a", "b", "c"], progress=False)
    lines = _lines(out)
    assert lines[0] == {"type": "header", "name": "toy", "k": [1, 2]}
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


@pytest.mark.parametrize(
    ("units", "config", "concurrency", "message"),
    [
        (["a", "a"], CONFIG, 1, "item ids are not unique"),
        (["a"], {"type": "x"}, 1, "must not contain the key 'type'"),
        (["a"], CONFIG, 0, "concurrency must be at least 1"),
    ],
)
async def test_bad_arguments_are_refused_before_the_file_is_touched(
    tmp_path: Path, units: list[str], config: dict[str, Any], concurrency: int, message: str
) -> None:
    """Duplicate keys, a config with ``type`` or no concurrency raise; nothing is written."""
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
