"""Resumable runs: work items into a run file (``system2.runfile``), each record appended the
moment its item is done, so a rerun picks up where a crash or Ctrl-C left off.

Evaluation, router-label collection and verifier-triplet synthesis all run this way; each
describes its kind of run once, as a ``ResumableRun`` (record type, how items and records are
keyed, the progress bar's label and live description), and supplies the work of one item.
``ResumableRun.run`` does the rest: it locks the file against a second run, refuses a file
written under another config or by other code (unless ``allow_mixed``: see
``system2.runfile``), skips the items already recorded (failed ones too, unless
``retry_failed``), runs the others with at most ``concurrency`` in flight and shows a
progress bar. For an item recorded more than once (a retried failure) the last record wins.
"""

from __future__ import annotations

import asyncio
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Hashable,
    Mapping,
    Sequence,
)
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import structlog
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from system2.code_version import CodeVersion
from system2.runfile import (
    CODE_KEY,
    RunFileWriter,
    jsonable,
    prepare_run_file,
    read_run_file,
    run_file_lock,
)

__all__ = ["ResumableRun", "bounded_map", "is_settled", "run_progress"]

log = structlog.get_logger(__name__)

U = TypeVar("U")
K = TypeVar("K", bound=Hashable)

Record = dict[str, Any]


def is_settled(record: Mapping[str, Any] | None, *, retry_failed: bool) -> bool:
    """Whether a resumed run skips this recorded entry: any record does, except a failed
    one (``status == "failed"``) when ``retry_failed``."""
    return record is not None and (not retry_failed or record["status"] != "failed")


def run_progress(label: str, *, console: Console | None, enabled: bool) -> Progress:
    """The progress bar of a run-file loop: done/total, a live description, elapsed time."""
    return Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        disable=not enabled,
    )


async def bounded_map(
    units: Sequence[U],
    work: Callable[[U], Awaitable[Record]],
    concurrency: int,
) -> AsyncIterator[tuple[U, Record]]:
    """Each unit's record as it finishes, with at most ``concurrency`` units in flight."""
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    if concurrency == 1:
        for unit in units:
            # Awaited directly, not as a task: a KeyboardInterrupt must reach the caller.
            yield unit, await work(unit)
        return
    slots = asyncio.Semaphore(concurrency)

    async def bounded(unit: U) -> tuple[U, Record]:
        async with slots:
            return unit, await work(unit)

    tasks = [asyncio.ensure_future(bounded(unit)) for unit in units]
    try:
        for finished in asyncio.as_completed(tasks):
            yield await finished
    finally:
        for task in tasks:
            task.cancel()


@dataclass(frozen=True)
class ResumableRun(Generic[U, K]):
    """One kind of resumable run over items of type ``U``, each keyed by a ``K``.

    ``key`` gives an item's key and ``record_key`` a record's (the two must agree);
    records are lines ``{"type": record_type, ...}``. ``label`` names the progress bar,
    ``describe`` writes its live text from the records done so far, and ``log_event``
    prefixes the run's log event (``<log_event>.start``).
    """

    record_type: str
    key: Callable[[U], K]
    record_key: Callable[[Record], K]
    label: str
    describe: Callable[[Collection[Mapping[str, Any]]], str]
    log_event: str

    def read(self, path: Path | str) -> tuple[Record | None, dict[K, Record]]:
        """The header and the records (the last one per key) of a run file. A torn final
        line, left by a crash mid-write, is ignored."""
        return read_run_file(Path(path), record_type=self.record_type, key=self.record_key)

    async def run(
        self,
        items: Sequence[U],
        work: Callable[[U], Awaitable[Record]],
        out: Path | str,
        *,
        config: Mapping[str, Any],
        retry_failed: bool = False,
        allow_mixed: bool = False,
        concurrency: int = 1,
        progress: bool = True,
        console: Console | None = None,
        code: CodeVersion | None = None,
    ) -> list[Record]:
        """Run ``work`` on every item not yet settled in ``out`` (written under ``config``,
        its header), appending each record as it finishes; the records of all ``items``, in
        their order, resumed ones included.

        ``out`` is locked for the whole run: a second run on it, in this process or
        another, raises ``RunFileLockedError`` at once. A file written by other code than
        ``code`` (default: the running code) raises ``RunCodeMismatchError`` unless
        ``allow_mixed``, which resumes it and marks in the file where the code changed; a
        file that already settles every item is only read, whatever code wrote it.

        ``work`` should catch its item's ``Exception``s and return a record with ``status``
        ``"failed"``: anything it raises (KeyboardInterrupt, cancellation) propagates, and
        the items in flight are simply not recorded. With ``concurrency`` > 1 records are
        appended in completion order.
        """
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        for reserved in ("type", CODE_KEY):
            if reserved in config:
                raise ValueError(f"run_config must not contain the key {reserved!r}")
        keys = [self.key(item) for item in items]
        if len(set(keys)) != len(keys):
            raise ValueError("item ids are not unique")
        header = jsonable(config)
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)

        with run_file_lock(out):
            _, records = self.read(out) if out.exists() else (None, {})
            complete = bool(records) and all(
                is_settled(records.get(k), retry_failed=retry_failed) for k in keys
            )
            opening = prepare_run_file(
                out, header, code=code, allow_mixed=allow_mixed, appending=not complete
            )
            if not complete:  # preparing may have emptied a file whose header was torn
                _, records = self.read(out)
            done = {
                k: records[k] for k in keys if is_settled(records.get(k), retry_failed=retry_failed)
            }
            pending = [item for item, k in zip(items, keys, strict=True) if k not in done]
            log.info(
                f"{self.log_event}.start",
                out=str(out),
                total=len(items),
                done=len(done),
                todo=len(pending),
            )
            bar = run_progress(self.label, console=console, enabled=progress)
            with RunFileWriter(out) as writer:
                if opening is not None:
                    writer.write(opening)
                with bar:
                    task = bar.add_task(
                        self.describe(done.values()), total=len(items), completed=len(done)
                    )
                    async for item, record in bounded_map(pending, work, concurrency):
                        writer.write(record)
                        done[self.key(item)] = record
                        bar.update(task, advance=1, description=self.describe(done.values()))
        return [done[k] for k in keys]
