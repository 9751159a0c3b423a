"""The generator model that ``system2 verifier`` commands run: from ``--model`` (a catalog
name or local directory, in-process), or a model of ``--config``, or the built-in config's."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.prompts import PromptConfig
from orchestrator.types import TaskType
from system2.cli.config_file import load_cli_config
from system2.cli.output import fail
from system2.logging import configure_logging
from system2.ray.config import RayWorkerConfig
from workers.base import Worker
from workers.errors import CatalogError

__all__ = ["Generator", "load_generator"]


@dataclass(frozen=True)
class Generator:
    """The worker to use, the prompts to pose with, and what to record about them."""

    worker: Worker
    prompts: dict[TaskType, PromptConfig]
    described: dict[str, Any]
    checkpoint: str | None


def load_generator(
    config: Path | None,
    name: str | None,
    model: str | None,
    threads: int | None,
    verifier: Path | None = None,
) -> Generator:
    """Build the generator's worker (loads the model; attaches ``verifier`` if given)."""
    from workers.config import (
        TransformersWorkerConfig,
        VerifierConfig,
        VLLMWorkerConfig,
        WorkerConfig,
        build_worker,
    )

    wc: WorkerConfig
    if model is not None:
        if config is not None:
            raise fail("give --model or --config, not both")
        configure_logging("console", "warning")  # the built-in config's logging
        wc = TransformersWorkerConfig(
            model=model,
            threads=threads,
            verifier=VerifierConfig(path=str(verifier)) if verifier else None,
        )
        worker_name, prompts = model, {}
    else:
        cfg = load_cli_config(config)
        worker_name = name or cfg.policy.models[0]
        if worker_name not in cfg.models:
            raise fail(f"no model {worker_name!r} in the config ({', '.join(cfg.models)})")
        declared = cfg.models[worker_name]
        if isinstance(declared, RayWorkerConfig):  # verifier commands run it in-process
            declared = declared.replica
        if verifier is not None:
            if not isinstance(declared, TransformersWorkerConfig | VLLMWorkerConfig):
                raise fail(
                    f"model {worker_name!r} is not a transformers or vllm worker; use --model"
                )
            declared = declared.model_copy(update={"verifier": VerifierConfig(path=str(verifier))})
        wc, prompts = declared, dict(cfg.prompts)
    checkpoint = wc.model if isinstance(wc, TransformersWorkerConfig | VLLMWorkerConfig) else None
    try:
        worker = build_worker(worker_name, wc)
    except (CatalogError, ValueError) as exc:
        raise fail(exc) from None
    described = {"worker": json.loads(wc.model_dump_json()), "generator": checkpoint}
    return Generator(worker, prompts, described, checkpoint)
