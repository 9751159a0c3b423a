"""Slow: a real two-node Ray cluster (``ray start --head`` + ``ray start --address``) with
SmolLM2 replicas: queries through the ``ray`` worker kind survive a replica killed
mid-run; an in-process vLLM engine serves the seam from a replica; ``eval --ray`` survives
an actor killed mid-run and resumes to the results of an in-process run."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

ray = pytest.importorskip("ray")
serve = pytest.importorskip("ray.serve")

from orchestrator.types import Answer, Query  # noqa: E402
from system2.assembly import build_orchestrator, build_worker  # noqa: E402
from system2.cli.main import app  # noqa: E402
from system2.config import System2Config, load_config, parse_config  # noqa: E402
from system2.evaluation import EvalItem, load_dataset, read_records, run_eval  # noqa: E402
from system2.ray.config import RayClusterConfig, RayWorkerConfig  # noqa: E402
from system2.ray.deploy import replica_actor_name  # noqa: E402
from system2.ray.evaluation import RayItemPool  # noqa: E402
from system2.ray.replica import DEPLOYMENT_NAME  # noqa: E402
from workers.base import (  # noqa: E402
    ChatMessage,
    GenerateRequest,
    GenerateResult,
    SamplingParams,
    ScoreRequest,
)

from .local_cluster import LocalCluster  # noqa: E402

pytestmark = pytest.mark.slow

QUERIES = 50
EVAL_ITEMS = 20
KILL_AFTER = 10


@pytest.fixture(scope="module")
def two_nodes() -> Iterator[str]:
    """Two Ray nodes of one CPU each; this process joins them as the driver."""
    if ray.is_initialized():
        ray.shutdown()
    cluster = LocalCluster.start(nodes=2, cpus_per_node=1)
    try:
        ray.init(address=cluster.address, namespace="system2-tests")
        yield cluster.address
    finally:
        if ray.is_initialized():
            serve.shutdown()
            ray.shutdown()
        cluster.stop()


def _config(model: dict[str, Any], address: str, max_tokens: int) -> System2Config:
    return parse_config(
        {
            "models": {"small": model},
            "policy": {"kind": "fixed", "models": ["small"]},
            "strategy": {"kind": "greedy", "max_tokens": max_tokens},
            "ray": {"address": address},
            "logging": {"level": "warning"},
        }
    )


async def _running_replicas(expected: int, timeout_s: float = 120.0) -> bool:
    """Whether the model's application has ``expected`` running replicas in time."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        application = serve.status().applications["system2-small"]
        states = application.deployments[DEPLOYMENT_NAME].replica_states
        if states.get("RUNNING", 0) == expected:
            return True
        await asyncio.sleep(1.0)
    return False


def _replica_id(answer: Answer) -> str:
    replica = answer.trace.generations[0].replica
    assert replica is not None
    return replica.rsplit("/", 1)[1]


def test_queries_survive_a_killed_replica(two_nodes: str, small_model_name: str) -> None:
    """50 queries over SmolLM2 replicas on both nodes, one replica killed mid-run: every
    query answered once, the retry in its trace, the replica replaced."""
    replica = {"kind": "transformers", "model": small_model_name, "threads": 1}
    model = {"kind": "ray", "replica": replica, "num_replicas": 2, "num_cpus": 1}
    orch = build_orchestrator(_config(model, two_nodes, max_tokens=12))
    # Each replica holds one node's only CPU: one replica per node.
    assert ray.cluster_resources()["CPU"] == 2
    assert ray.available_resources().get("CPU", 0) == 0

    async def run() -> tuple[list[Answer], str]:
        slots = asyncio.Semaphore(8)
        answers: list[Answer] = []
        enough = asyncio.Event()

        async def ask(i: int) -> Answer:
            async with slots:
                answer = await orch.answer(Query(text=f"What is {i} + {i + 1}?", task="math"))
            answers.append(answer)
            if len(answers) >= KILL_AFTER:
                enough.set()
            return answer

        async def kill() -> str:
            await enough.wait()
            victim = _replica_id(answers[-1])
            await asyncio.sleep(1.0)  # its next batch has been routed to it and is decoding
            actor = ray.get_actor(replica_actor_name("system2-small", victim), "serve")
            ray.kill(actor)  # Serve replaces replicas itself (Ray does not restart them)
            return victim

        async with orch:  # closing it deletes the application: check the replica first
            killer = asyncio.ensure_future(kill())
            done = await asyncio.gather(*(ask(i) for i in range(QUERIES)))
            victim = await killer
            assert await _running_replicas(2), "the killed replica was not replaced"
            return done, victim

    answers, victim = asyncio.run(run())
    assert len({a.trace.query_id for a in answers}) == QUERIES
    assert [a.query.text for a in answers] == [f"What is {i} + {i + 1}?" for i in range(QUERIES)]
    assert all(a.status != "failed" and not a.trace.failures for a in answers)
    assert all(len(a.trace.generations) == 1 for a in answers)
    retried = [a for a in answers if a.trace.generations[0].attempts > 1]
    assert retried, "no query was in flight on the killed replica"
    assert all(_replica_id(a) != victim for a in retried)


def test_a_vllm_replica_serves_the_seam(two_nodes: str, small_model_name: str) -> None:
    """An in-process vLLM engine hosted by a Serve replica: generate, score with top
    alternatives, decode and stream through the handle."""
    pytest.importorskip("vllm")
    replica = {
        "kind": "vllm",
        "model": small_model_name,
        "enforce_eager": True,
        "kv_cache_gib": 1,
        "max_model_len": 2048,
    }
    config = RayWorkerConfig.model_validate({"replica": replica, "num_cpus": 1})
    worker = build_worker("v", config, cluster=RayClusterConfig(address=two_nodes))

    async def run() -> None:
        try:
            chat = (ChatMessage(role="user", content="What is 2+2?"),)
            request = GenerateRequest(prompt=chat, params=SamplingParams(max_tokens=12))
            first, second = await worker.generate(request), await worker.generate(request)
            assert first.completions[0].text == second.completions[0].text  # greedy
            assert len(first.completions[0].token_ids) == len(first.completions[0].logprobs)
            assert (first.usage.replica or "").startswith("ray:system2-v/")
            capital = ScoreRequest(
                prompt="The capital of France is", continuations=(" Paris.",), top_logprobs=2
            )
            scored = await worker.score(capital)
            assert len(scored.scores[0].top_alternatives[0]) == 2
            assert scored.scores[0].total_logprob < 0
            text = await worker.decode_tokens(list(scored.scores[0].token_ids))
            assert text == " Paris."
            streamed = [i async for i in worker.generate_stream(request)]
            assert isinstance(streamed[-1], GenerateResult)
            assert streamed[-1].completions[0].text == first.completions[0].text
        finally:
            await worker.close()

    asyncio.run(run())


def _records(path: Path) -> dict[str, dict[str, Any]]:
    _, records = read_records(path)
    return records


def _item_lines(path: Path) -> list[str]:
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [line["id"] for line in lines if line.get("type") == "item"]


def _outcome(records: dict[str, dict[str, Any]]) -> dict[str, tuple[Any, ...]]:
    return {k: (r["predicted"], r["correct"], r["status"]) for k, r in records.items()}


def test_eval_on_ray_survives_a_killed_actor_and_resumes(
    two_nodes: str, small_model_name: str, tmp_path: Path
) -> None:
    """``eval --ray``: an actor killed mid-run is restarted and its item retried (every
    item recorded once), and a cut-short run file resumes to the in-process results."""
    model = {"kind": "transformers", "model": small_model_name, "threads": 1}
    config = _config(model, two_nodes, max_tokens=40)
    items = load_dataset("gsm_symbolic", limit=EVAL_ITEMS, seed=0)
    config_file = tmp_path / "config.yaml"
    config_file.write_text(json.dumps(config.model_dump(mode="json", exclude_unset=True)))
    run_config = {  # as `system2 eval` writes it, so the CLI resumes these files
        "dataset": "gsm_symbolic",
        "limit": EVAL_ITEMS,
        "seed": 0,
        "config": json.loads(load_config(config_file).model_dump_json(exclude={"ray"})),
    }

    in_process = tmp_path / "in_process.jsonl"
    orch = build_orchestrator(config)

    async def run_here() -> None:
        async with orch:
            await run_eval(items, orch.answer, in_process, run_config=run_config, progress=False)

    asyncio.run(run_here())
    expected = _outcome(_records(in_process))

    on_ray = tmp_path / "on_ray.jsonl"
    pool = RayItemPool(config, actors=2, num_cpus=1)
    pool.wait_ready()

    async def run_on_ray() -> None:
        first = asyncio.Event()

        async def record(item: EvalItem) -> dict[str, Any]:
            made = await pool.record(item)
            first.set()
            return made

        run = asyncio.ensure_future(
            run_eval(
                items,
                None,
                on_ray,
                run_config=run_config,
                progress=False,
                concurrency=2,
                record_fn=record,
            )
        )
        await first.wait()
        await asyncio.sleep(1.0)  # both actors are on an item again
        ray.kill(pool.actors[0], no_restart=False)  # mid-item: Ray restarts it and retries
        await run

    try:
        asyncio.run(run_on_ray())
    finally:
        pool.close()
    assert sorted(_item_lines(on_ray)) == sorted(it.id for it in items)  # each once
    assert _outcome(_records(on_ray)) == expected

    # A run cut short after two items resumes through the CLI to the same results.
    cut = tmp_path / "cut.jsonl"
    lines = on_ray.read_text().splitlines(keepends=True)
    cut.write_text("".join(lines[:3]))
    result = CliRunner().invoke(
        app,
        [
            "eval",
            "gsm_symbolic",
            "--limit",
            str(EVAL_ITEMS),
            "--out",
            str(cut),
            "--config",
            str(config_file),
            "--ray",
            "--address",
            two_nodes,
        ],
    )
    assert result.exit_code == 0, result.output
    assert sorted(_item_lines(cut)) == sorted(it.id for it in items)
    assert _outcome(_records(cut)) == expected
