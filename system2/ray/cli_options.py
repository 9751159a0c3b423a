"""What the CLI's Ray options do: ``--address`` (the cluster a config's ``ray`` section
names, overridden) and ``eval --ray`` (``system2.ray.evaluation``, imported only when asked
for, so the CLI works without the ``ray`` extra)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from system2.cli.output import console, fail
from system2.config import ConfigError, System2Config
from system2.evaluation.datasets import EvalItem
from system2.evaluation.runner import RunSummary
from workers.errors import CatalogError

__all__ = ["eval_on_ray", "with_ray_address"]


def with_ray_address(config: System2Config, address: str | None) -> System2Config:
    """``config`` joining the Ray cluster at ``address`` (None: as it says)."""
    if address is None:
        return config
    return config.model_copy(update={"ray": config.ray.model_copy(update={"address": address})})


def eval_on_ray(
    items: Sequence[EvalItem],
    config: System2Config,
    out: Path,
    *,
    run_config: Mapping[str, Any],
    actors: int,
    actor_cpus: float,
    concurrency: int,
    retry_failed: bool,
    allow_mixed: bool,
) -> RunSummary:
    """``system2 eval --ray``: the run on the config's cluster; errors end the command."""
    try:
        from system2.ray.evaluation import run_eval_on_ray  # imports ray, an optional extra
    except ImportError as exc:
        raise fail(f"{exc}: install the ray extra (pip install 'system2[ray]')") from None
    run = run_eval_on_ray(
        items,
        config,
        out,
        run_config=run_config,
        actors=actors,
        actor_cpus=actor_cpus,
        concurrency=concurrency,
        retry_failed=retry_failed,
        allow_mixed=allow_mixed,
        console=console,
    )
    try:
        return asyncio.run(run)
    except (ConfigError, CatalogError, ValueError) as exc:
        raise fail(exc) from None
