"""Everything that runs a model, behind one async seam (``Worker``)."""

from __future__ import annotations

from workers.base import (
    ChatMessage,
    Completion,
    ContinuationScore,
    GenerateRequest,
    GenerateResult,
    Guidance,
    Prompt,
    SamplingParams,
    ScoreRequest,
    ScoreResult,
    StepScale,
    StepVerifier,
    StreamItem,
    TokenAlternative,
    TokenChunk,
    Worker,
    WorkerUsage,
)
from workers.config import (
    OpenAIWorkerConfig,
    PoolConfig,
    ScriptedWorkerConfig,
    TransformersWorkerConfig,
    VerifierConfig,
    VLLMWorkerConfig,
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
    UnsupportedRequest,
    WorkerFailure,
)
from workers.guidance_stats import GuidanceStats
from workers.pool import WorkerPool
from workers.pool_stats import PoolStats, ReplicaStats
from workers.scripted import ScriptedWorker, cycle_texts
from workers.vllm.worker import VLLMWorker  # vllm itself loads only when an engine starts

__all__ = [
    "CatalogError",
    "ChatMessage",
    "ChecksumMismatchError",
    "Completion",
    "ContinuationScore",
    "GenerateRequest",
    "GenerateResult",
    "Guidance",
    "GuidanceStats",
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
    "StepScale",
    "StepVerifier",
    "StreamItem",
    "System2WorkerError",
    "TokenAlternative",
    "TokenChunk",
    "TransformersWorker",
    "TransformersWorkerConfig",
    "UnknownModelError",
    "UnsupportedRequest",
    "VLLMWorker",
    "VLLMWorkerConfig",
    "VerifierConfig",
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
        from workers.openai import worker as openai_worker

        return getattr(openai_worker, name)
    raise AttributeError(f"module 'workers' has no attribute {name!r}")
