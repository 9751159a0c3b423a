"""Everything that runs a model, behind one async seam (``Worker``)."""

from __future__ import annotations

from workers.base import (
    ChatMessage,
    Completion,
    ContinuationScore,
    GenerateRequest,
    GenerateResult,
    Prompt,
    SamplingParams,
    ScoreRequest,
    ScoreResult,
    Worker,
    WorkerUsage,
)
from workers.config import (
    OpenAIWorkerConfig,
    PoolConfig,
    ScriptedWorkerConfig,
    TransformersWorkerConfig,
    WorkerConfig,
    build_worker,
)
from workers.errors import (
    CatalogError,
    ChecksumMismatchError,
    ModelNotPulledError,
    PullError,
    System2WorkerError,
    UnknownModelError,
    WorkerFailure,
)
from workers.pool import PoolStats, ReplicaStats, WorkerPool
from workers.scripted import ScriptedWorker, cycle_texts

__all__ = [
    "CatalogError",
    "ChatMessage",
    "ChecksumMismatchError",
    "Completion",
    "ContinuationScore",
    "GenerateRequest",
    "GenerateResult",
    "ModelNotPulledError",
    "OpenAIWorker",
    "OpenAIWorkerConfig",
    "PoolConfig",
    "PoolStats",
    "Prompt",
    "PullError",
    "ReplicaStats",
    "RequestRejected",
    "SamplingParams",
    "ScoreRequest",
    "ScoreResult",
    "ScriptedWorker",
    "ScriptedWorkerConfig",
    "System2WorkerError",
    "TransformersWorker",
    "TransformersWorkerConfig",
    "UnknownModelError",
    "Worker",
    "WorkerConfig",
    "WorkerFailure",
    "WorkerPool",
    "WorkerUsage",
    "build_worker",
    "cycle_texts",
]


def __getattr__(name: str) -> object:
    # TransformersWorker imports torch and transformers, OpenAIWorker httpx: only when asked.
    if name == "TransformersWorker":
        from workers.transformers_worker import TransformersWorker

        return TransformersWorker
    if name in ("OpenAIWorker", "RequestRejected"):
        from workers import openai_worker

        return getattr(openai_worker, name)
    raise AttributeError(f"module 'workers' has no attribute {name!r}")
