"""``system2 serve`` under load, against the library on the same engine.

In one run, on one engine (``--engine``), for one model:

(a) Throughput: ``--clients`` concurrent clients, each sending ``--requests`` greedy
    chat completions one after another, through the server (``system2 serve`` in a
    process of its own, on loopback, the same YAML) and through the library directly
    (``Orchestrator.answer`` in this process, the same clients). Output tokens/s and the
    ratio server/library, p50/p99 latency, and the requests lost (not answered 200).
(b) Time to first token, one request at a time (median of ``--ttft-repeats``): streaming
    greedy through the server (the client's first content chunk) against the worker's own
    first token (``generate_stream`` on the same prompt, in this process).
(c) The exact early stop on SC@10: seeded SC@10 with and without ``exact_stop`` through
    the library: tokens, tokens saved (measured; the trace's estimate), answers agreeing.
(d) With ``--kill-replica`` (``--engine vllm``): two ``vllm serve`` replicas behind a
    ``WorkerPool`` serve the greedy profile; the same load goes through the server while one
    replica is SIGKILLed mid-run: requests lost (goal 0) and fail-overs.

Run: python -m benchmarks.server [--engine transformers|vllm] [--clients 64] [--requests 4]
     [--max-tokens 32] [--kill-replica]   (small: --clients 4 --requests 4 --sc-questions 2)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import yaml

from benchmarks.common import ENGINES, report
from orchestrator.orchestrator import Orchestrator
from orchestrator.prompts import build_prompt
from orchestrator.strategies.config import SelfConsistencyConfig
from orchestrator.types import Query
from system2.config import load_config
from system2.logging import configure_logging
from system2.server.profiles import build_served_models
from workers.base import GenerateRequest, SamplingParams, TokenChunk, Worker
from workers.streaming import closing

MODEL = "smol"
Row = dict[str, Any]
Ask = Callable[[str], Awaitable[tuple[int, bool]]]  # question -> (completion tokens, answered)


def question(i: int) -> str:
    return f"What is {17 + 3 * i} + {5 + 2 * i}?"


def easy_question(i: int) -> str:
    """SC@10's questions: ones a small model mostly gets right, so its votes can settle."""
    return f"What is {i + 2} + {i + 2}?"


def model_yaml(args: argparse.Namespace) -> dict[str, Any]:
    if args.engine == "vllm":
        return {
            "kind": "vllm",
            "model": args.model,
            "max_model_len": args.max_model_len,
            "kv_cache_gib": args.kv_cache_gib,
            "enforce_eager": True,
        }
    return {"kind": "transformers", "model": args.model, "threads": args.threads}


def config_yaml(args: argparse.Namespace, model: dict[str, Any]) -> dict[str, Any]:
    total = args.clients * args.requests
    return {
        "models": {MODEL: model},
        "policy": {"kind": "fixed", "models": [MODEL]},
        "strategy": {"kind": "greedy", "max_tokens": args.max_tokens},
        "task": "math",
        "profiles": {"greedy": {}},
        "server": {"max_running": args.clients, "max_waiting": total, "request_timeout_s": 3600},
        "logging": {"level": "warning"},
    }


# -- load -------------------------------------------------------------------------------


async def load(ask: Ask, clients: int, requests: int, during: Awaitable[None] | None = None) -> Row:
    """``clients`` clients, each asking ``requests`` questions in turn (``during`` runs
    alongside, e.g. a replica kill); tokens/s, latency percentiles, requests lost."""
    latencies: list[float] = []
    tokens, lost = 0, 0

    async def client(c: int) -> None:
        nonlocal tokens, lost
        for r in range(requests):
            started = time.perf_counter()
            try:
                made, answered = await ask(question(c * requests + r))
            except Exception as exc:
                print(f"request lost: {type(exc).__name__}: {exc}", file=sys.stderr)
                made, answered = 0, False
            latencies.append(time.perf_counter() - started)
            tokens += made
            lost += not answered

    started = time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(clients)), *([during] if during else []))
    wall = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "requests": len(latencies),
        "lost": lost,
        "tokens": tokens,
        "seconds": wall,
        "tokens_per_s": tokens / wall,
        "p50_s": statistics.median(ordered),
        "p99_s": ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))],
    }


def library_ask(orchestrator: Orchestrator) -> Ask:
    async def ask(text: str) -> tuple[int, bool]:
        answer = await orchestrator.answer(Query(text=text, task="math"))
        return answer.usage.completion_tokens, answer.status != "failed"

    return ask


def server_ask(http: httpx.AsyncClient) -> Ask:
    async def ask(text: str) -> tuple[int, bool]:
        body = {"model": "greedy", "messages": [{"role": "user", "content": text}]}
        response = await http.post("/v1/chat/completions", json=body)
        if response.status_code != 200:
            print(f"request lost: HTTP {response.status_code}: {response.text[:200]}")
            return 0, False
        return int(response.json()["usage"]["completion_tokens"]), True

    return ask


# -- time to first token ----------------------------------------------------------------


async def worker_ttft(
    worker: Worker, orchestrator: Orchestrator, args: argparse.Namespace
) -> float:
    """Median seconds to the worker's first token of the greedy request the server makes."""
    seconds = []
    for i in range(args.ttft_repeats):
        query = Query(text=question(1000 + i), task="math")
        prompt = build_prompt(query, orchestrator.prompts.get("math"))
        params = SamplingParams(temperature=0.0, max_tokens=args.max_tokens)
        started = time.perf_counter()
        async with closing(
            worker.generate_stream(GenerateRequest(prompt=prompt, params=params))
        ) as s:
            async for item in s:
                if isinstance(item, TokenChunk) and item.text:
                    break
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


async def server_ttft(http: httpx.AsyncClient, args: argparse.Namespace) -> float:
    """Median seconds to the first content chunk of a streamed greedy chat completion."""
    seconds = []
    for i in range(args.ttft_repeats):
        body = {
            "model": "greedy",
            "messages": [{"role": "user", "content": question(1000 + i)}],
            "stream": True,
        }
        started = time.perf_counter()
        first = None
        async with http.stream("POST", "/v1/chat/completions", json=body) as response:
            async for line in response.aiter_lines():
                if first is None and line.startswith("data: {"):
                    choices = json.loads(line[len("data: ") :]).get("choices") or [{}]
                    if choices[0].get("delta", {}).get("content"):
                        first = time.perf_counter() - started
        if first is None:
            raise RuntimeError("the stream sent no content")
        seconds.append(first)
    return statistics.median(seconds)


# -- the exact early stop ---------------------------------------------------------------


async def exact_stop(orchestrator: Orchestrator, args: argparse.Namespace) -> dict[str, Any]:
    """Seeded SC@10 with and without ``exact_stop`` on the same questions."""
    per_question = []
    for i in range(args.sc_questions):
        runs = {}
        for exact in (False, True):
            strategy = SelfConsistencyConfig(
                n=10, max_tokens=args.sc_max_tokens, seed=100 + i, exact_stop=exact
            )
            started = time.perf_counter()
            answer = await orchestrator.answer(
                Query(text=easy_question(i), task="math"), strategy=strategy
            )
            runs[exact] = (answer, time.perf_counter() - started)
        (full, full_s), (exact_answer, exact_s) = runs[False], runs[True]
        count = exact_answer.trace.extra["exact_stop"]
        per_question.append(
            {
                "question": easy_question(i),
                "answer_all_10": full.answer,
                "answer_exact": exact_answer.answer,
                "tokens_all_10": full.usage.completion_tokens,
                "tokens_exact": exact_answer.usage.completion_tokens,
                "seconds_all_10": full_s,
                "seconds_exact": exact_s,
                "samples_finished": count["samples_finished"],
                "saved_tokens_estimate": count["saved_tokens_estimate"],
            }
        )
    full_tokens = sum(q["tokens_all_10"] for q in per_question)
    exact_tokens = sum(q["tokens_exact"] for q in per_question)
    return {
        "questions": per_question,
        "tokens_all_10": full_tokens,
        "tokens_exact": exact_tokens,
        "tokens_saved": full_tokens - exact_tokens,
        "tokens_saved_estimate": sum(q["saved_tokens_estimate"] for q in per_question),
        "answers_agree": sum(q["answer_all_10"] == q["answer_exact"] for q in per_question),
    }


# -- the server process -----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def serving(config: dict[str, Any], log: Path, ready_timeout_s: float = 900.0) -> Iterator[str]:
    """``system2 serve`` on ``config`` in a process of its own; yields its URL."""
    port = free_port()
    path = log.with_suffix(".yaml")
    path.write_text(yaml.safe_dump(config))
    command = [sys.executable, "-c", "from system2.cli.main import app; app()", "serve",
               "--config", str(path), "--port", str(port)]  # fmt: skip
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=out, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited ({process.returncode}); see {log}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server was not ready in {ready_timeout_s:g}s; see {log}")
            time.sleep(0.5)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def client(url: str, args: argparse.Namespace) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=args.clients + 4, max_keepalive_connections=args.clients)
    return httpx.AsyncClient(base_url=url, timeout=3600, limits=limits)


def failovers(metrics: str) -> float:
    lines = metrics.splitlines()
    return sum(float(s.rsplit(" ", 1)[1]) for s in lines if s.startswith("system2_failovers_total"))


async def kill_phase(args: argparse.Namespace, logs: Path) -> Row:
    """(d): two ``vllm serve`` replicas behind a pool, one killed mid-run."""
    from workers.vllm.server import VLLMServer

    replicas = [
        VLLMServer(args.model, served_name=MODEL, log_path=logs / f"replica-{n}.log")
        for n in ("a", "b")
    ]
    try:
        for replica in replicas:
            replica.start()
        for replica in replicas:
            replica.wait_ready()
        urls = [{"kind": "openai", "base_url": r.url, "model": MODEL} for r in replicas]
        pool = {"kind": "pool", "replicas": urls, "eject_after": 2, "probe_interval_s": 1.0}
        with serving(config_yaml(args, pool), logs / "server-pool.log") as url:
            async with client(url, args) as http:

                async def kill_mid_run() -> None:
                    await asyncio.sleep(args.kill_after_s)
                    await asyncio.to_thread(replicas[1].kill)

                row = await load(server_ask(http), args.clients, args.requests, kill_mid_run())
                row["failovers"] = failovers((await http.get("/metrics")).text)
        return row
    finally:
        for replica in replicas:
            replica.stop()


# -- main -------------------------------------------------------------------------------


def compare(measure: str, server: float, library: float) -> Row:
    ratio = server / library if library else None
    return {"measure": measure, "server": server, "library": library, "server/library": ratio}


async def main(args: argparse.Namespace) -> None:
    logs = Path(tempfile.mkdtemp(prefix="bench-server-"))
    config = config_yaml(args, model_yaml(args))
    configure_logging("console", "warning")  # as the server logs
    (logs / "library.yaml").write_text(yaml.safe_dump(config))
    served = build_served_models(load_config(logs / "library.yaml"))
    orchestrator = served.profiles["greedy"].orchestrator
    try:
        ask = library_ask(orchestrator)
        await ask(question(0))  # warm-up
        library = await load(ask, args.clients, args.requests)
        worker_first = await worker_ttft(served.workers[MODEL], orchestrator, args)
        sc = await exact_stop(orchestrator, args)
    finally:
        await served.close()
    with serving(config, logs / "server.log") as url:
        async with client(url, args) as http:
            await server_ask(http)(question(0))  # warm-up
            server = await load(server_ask(http), args.clients, args.requests)
            server_first = await server_ttft(http, args)
    rows = [
        compare("output tokens/s", server["tokens_per_s"], library["tokens_per_s"]),
        compare("p50 latency (s)", server["p50_s"], library["p50_s"]),
        compare("p99 latency (s)", server["p99_s"], library["p99_s"]),
        compare("time to first token (s)", server_first, worker_first),
        compare("requests lost", server["lost"], library["lost"]),
    ]
    summary: dict[str, Any] = {
        "run": f"{args.engine} {args.model}: {args.clients} clients x {args.requests} requests, "
        f"max_tokens {args.max_tokens}",
        "server load": server,
        "library load": library,
        "SC@10 tokens (all 10 / exact stop)": f"{sc['tokens_all_10']} / {sc['tokens_exact']}",
        "SC@10 saved (measured/estimate)": f"{sc['tokens_saved']}/{sc['tokens_saved_estimate']}",
        "SC@10 answers agreeing": f"{sc['answers_agree']} of {len(sc['questions'])}",
        "exact_stop": sc,
    }
    if args.kill_replica:
        summary["replica killed mid-run"] = await kill_phase(args, logs)
    report(args.out, rows, summary=summary, title="system2 serve vs the library")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=ENGINES, default="transformers")
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--requests", type=int, default=4, help="per client, one after another")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--ttft-repeats", type=int, default=5)
    parser.add_argument("--sc-questions", type=int, default=4)
    parser.add_argument("--sc-max-tokens", type=int, default=96)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (transformers)")
    parser.add_argument("--max-model-len", type=int, default=2048, help="vllm")
    parser.add_argument("--kv-cache-gib", type=float, default=2.0, help="vllm")
    parser.add_argument("--kill-replica", action="store_true", help="(d): vllm only")
    parser.add_argument("--kill-after-s", type=float, default=20.0, help="(d): when to kill")
    parser.add_argument("--out", default="server", help="results/<out>.json")
    args = parser.parse_args(argv)
    if args.kill_replica and args.engine != "vllm":
        parser.error("--kill-replica needs --engine vllm (it kills a vllm serve replica)")
    return args


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
