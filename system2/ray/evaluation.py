"""``system2 eval --ray``: the items answered and scored by Ray actors over a cluster,
while the driver writes the run file.

Each of ``actors`` ``ItemRunner`` actors builds the config's orchestrator once (its
in-process models loaded there; ``ray`` models attached to the applications the driver
deployed) and turns items into records with ``eval_record``, the very function of an
in-process run, HumanEval's sandboxed checks included (in the actor's CPU slot). The
driver hands each item to the actor with the fewest in flight and passes the records to
the usual resumable loop (``run_eval(record_fn=...)``), so the file keeps its guarantees:
one writer, appended as items finish, a rerun resumes, and each item is recorded once per
run (the loop keys records by item id; a call is answered once, retried or not).

Why Ray actors, not Ray Data: building an orchestrator loads models, so the work wants
long-lived processes that each take many items, and the driver must see each record as
it finishes to append it. Ray Data would add a second executor between the items and the
run file (blocks, its own batching and ordering, items as pickled objects) without
anything an evaluation of thousands of small items needs; what it is good at (large data
in the object store, shuffles) is not used here.

An actor that dies mid-item (killed, its node lost) is restarted by Ray, which runs the
item again (``max_restarts``/``max_task_retries``); an item whose retries run out is
recorded as failed (``--retry-failed`` reruns it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import RayError
from rich.console import Console

from orchestrator.orchestrator import Orchestrator
from system2.assembly import build_orchestrator, build_worker
from system2.config import System2Config
from system2.evaluation.datasets import EvalItem
from system2.evaluation.runner import RunSummary, eval_record, failed_record, run_eval
from system2.ray.cluster import connect
from system2.ray.config import RayWorkerConfig
from workers.base import Worker

__all__ = ["ItemRunner", "RayItemPool", "run_eval_on_ray"]


class ItemRunner:
    """The body of one evaluation actor: the config's orchestrator, turning items into
    run-file records."""

    def __init__(self, config: System2Config) -> None:
        self._orchestrator: Orchestrator = build_orchestrator(config, deploy=False)

    async def record(self, item: EvalItem) -> dict[str, Any]:
        return await eval_record(item, self._orchestrator.answer)

    def ready(self) -> bool:
        return True


class RayItemPool:
    """``actors`` ``ItemRunner`` actors on the connected cluster, each reserving
    ``num_cpus``; ``record(item)`` is the ``record_fn`` of ``run_eval``.

    ``retries``: how often an actor that died is restarted and its item run again.
    """

    def __init__(
        self,
        config: System2Config,
        *,
        actors: int = 2,
        num_cpus: float = 1.0,
        retries: int = 2,
    ) -> None:
        if actors < 1:
            raise ValueError(f"actors must be at least 1, got {actors}")
        runner = ray.remote(ItemRunner).options(
            num_cpus=num_cpus,
            max_restarts=retries,
            max_task_retries=retries,
            max_concurrency=1000,  # an async actor: its items share one event loop
        )
        self._actors: list[Any] = [runner.remote(config) for _ in range(actors)]
        self._in_flight = [0] * actors

    @property
    def actors(self) -> Sequence[Any]:
        """The actor handles (tests kill one to see its items retried)."""
        return tuple(self._actors)

    def wait_ready(self) -> None:
        """Block until every actor has built its orchestrator (raises its error if not)."""
        ray.get([actor.ready.remote() for actor in self._actors])

    async def record(self, item: EvalItem) -> dict[str, Any]:
        """``item``'s record, made by the least busy actor; an item that Ray could not
        finish (its actor dead after every retry) is recorded as failed."""
        index = min(range(len(self._actors)), key=self._in_flight.__getitem__)
        self._in_flight[index] += 1
        try:
            record: dict[str, Any] = await self._actors[index].record.remote(item)
        except RayError as exc:
            first_line = (str(exc).strip().splitlines() or [""])[0]
            return failed_record(item, f"ray: {type(exc).__name__}: {first_line}")
        finally:
            self._in_flight[index] -= 1
        if record.get("id") != item.id:
            raise RuntimeError(f"actor answered item {record.get('id')!r} for {item.id!r}")
        return record

    def close(self) -> None:
        """End the actors (their models with them)."""
        for actor in self._actors:
            ray.kill(actor)


async def run_eval_on_ray(
    items: Sequence[EvalItem],
    config: System2Config,
    out: Path,
    *,
    run_config: Mapping[str, Any],
    actors: int = 2,
    actor_cpus: float = 1.0,
    concurrency: int = 1,
    retry_failed: bool = False,
    allow_mixed: bool = False,
    progress: bool = True,
    console: Console | None = None,
) -> RunSummary:
    """``run_eval`` with the items answered on the cluster of ``config.ray`` (joined here):
    the ``ray`` models deployed first, then ``actors`` item runners, with at least one
    item in flight per actor (``concurrency`` more). The actors and the applications
    deployed here end with the run."""
    connect(config.ray)
    deployed = await asyncio.to_thread(_deploy_ray_models, config)
    pool: RayItemPool | None = None
    try:
        pool = RayItemPool(config, actors=actors, num_cpus=actor_cpus)
        await asyncio.to_thread(pool.wait_ready)
        return await run_eval(
            items,
            None,
            out,
            run_config=run_config,
            retry_failed=retry_failed,
            allow_mixed=allow_mixed,
            concurrency=max(concurrency, actors),
            progress=progress,
            console=console,
            record_fn=pool.record,
        )
    finally:
        if pool is not None:
            pool.close()
        await asyncio.gather(*(w.close() for w in deployed.values()))


def _deploy_ray_models(config: System2Config) -> dict[str, Worker]:
    """The config's ``ray`` models, deployed on the connected cluster."""
    return {
        name: build_worker(name, model, cluster=config.ray)
        for name, model in config.models.items()
        if isinstance(model, RayWorkerConfig)
    }
