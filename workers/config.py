"""How a model's worker is declared in YAML (``kind`` picks the backend) and built."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from workers.base import Worker
from workers.scripted import ScriptedWorker, cycle_texts

__all__ = [
    "WORKER_BUILDERS",
    "ScriptedWorkerConfig",
    "TransformersWorkerConfig",
    "WorkerConfig",
    "build_worker",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TransformersWorkerConfig(_Strict):
    """The embedded in-process model (the CPU default)."""

    kind: Literal["transformers"] = "transformers"
    model: str = Field(description="a catalog name (system2 models list) or a local directory")
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    threads: int | None = Field(default=None, ge=1, description="torch CPU threads")
    max_batch_rows: int = Field(default=32, ge=1)


class ScriptedWorkerConfig(_Strict):
    """A scripted test double that cycles through fixed responses; runs no model."""

    kind: Literal["scripted"] = "scripted"
    responses: tuple[str, ...] = Field(min_length=1)


WorkerConfig = Annotated[
    TransformersWorkerConfig | ScriptedWorkerConfig, Field(discriminator="kind")
]


def _transformers(name: str, config: Any) -> Worker:
    from workers.transformers_worker import TransformersWorker  # imports torch lazily

    return TransformersWorker.load(
        config.model,
        model_name=name,
        dtype=config.dtype,
        threads=config.threads,
        max_batch_rows=config.max_batch_rows,
    )


def _scripted(name: str, config: Any) -> Worker:
    return ScriptedWorker(name, cycle_texts(config.responses))


WORKER_BUILDERS: dict[str, Callable[[str, Any], Worker]] = {
    "transformers": _transformers,
    "scripted": _scripted,
}


def build_worker(name: str, config: WorkerConfig) -> Worker:
    """Build the worker for the model declared as ``name``."""
    return WORKER_BUILDERS[config.kind](name, config)
