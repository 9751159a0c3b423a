"""Resumable pipeline steps: each step writes its output into a directory of its own and,
last, a ``step.json`` marker with the step's config, its results and what it cost.

A rerun of a step whose marker exists with the same config skips it (``finished_step``); a
marker written under another config is refused (``StepConfigMismatch`` names the keys that
differ), so a finished output is never silently overwritten: pass ``force`` to redo it. A
directory without a marker (a step interrupted mid-way) is simply redone. Markers are
written atomically (a temporary file renamed into place), so a crash leaves none or a whole
one.

Costs are wall seconds and the torch threads the step ran with; CPU-hours are their
product (``StepMarker.cpu_hours``), what ``benchmarks.latent`` reports as the training
budget.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

__all__ = ["MARKER", "StepConfigMismatch", "StepMarker", "finished_step", "read_step", "write_step"]

MARKER = "step.json"


class StepConfigMismatch(ValueError):
    """A step's output exists, made under another config."""


class StepMarker(BaseModel):
    """What a finished step wrote: its name, config, results and cost."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    step: str
    config: dict[str, Any]
    results: dict[str, Any]
    seconds: float
    threads: int

    @property
    def cpu_hours(self) -> float:
        """Wall hours times the torch threads the step ran with."""
        return self.seconds * self.threads / 3600.0


def read_step(directory: str | Path) -> StepMarker | None:
    """The marker of the step finished in ``directory`` (None: not finished)."""
    file = Path(directory) / MARKER
    if not file.is_file():
        return None
    try:
        return StepMarker.model_validate_json(file.read_text())
    except ValidationError as exc:
        raise ValueError(f"{file}: not a step marker: {exc}") from exc


def _jsonable(config: Mapping[str, Any]) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(json.dumps(dict(config)))
    return loaded


def finished_step(
    directory: str | Path, step: str, config: Mapping[str, Any], *, force: bool = False
) -> StepMarker | None:
    """The marker of ``step`` in ``directory`` when it finished under ``config`` (skip it);
    None when it must run (no marker, or ``force``). Raises ``StepConfigMismatch`` for a
    marker of another step or config."""
    marker = read_step(directory)
    if marker is None or force:
        return None
    wanted = _jsonable(config)
    if marker.step != step:
        raise StepConfigMismatch(f"{directory} holds step {marker.step!r}, not {step!r}")
    if marker.config != wanted:
        keys = sorted(
            k
            for k in set(wanted) | set(marker.config)
            if wanted.get(k, "<unset>") != marker.config.get(k, "<unset>")
        )
        shown = ", ".join(
            f"{k}: {marker.config.get(k, '<unset>')!r} -> {wanted.get(k, '<unset>')!r}"
            for k in keys
        )
        raise StepConfigMismatch(
            f"{directory} was made by step {step!r} under another config ({shown}); use "
            "another output directory, or --force to redo it"
        )
    return marker


def write_step(
    directory: str | Path,
    step: str,
    config: Mapping[str, Any],
    results: Mapping[str, Any],
    *,
    seconds: float,
    threads: int,
) -> StepMarker:
    """Mark ``step`` finished in ``directory`` (atomically); returns the marker."""
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    marker = StepMarker(
        step=step,
        config=_jsonable(config),
        results=_jsonable(results),
        seconds=seconds,
        threads=threads,
    )
    temporary = path / f".{MARKER}.tmp"
    temporary.write_text(marker.model_dump_json(indent=2) + "\n")
    os.replace(temporary, path / MARKER)
    return marker
