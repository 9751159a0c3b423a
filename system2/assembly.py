"""Building a runnable ``Orchestrator`` from a validated config: workers, step verifier and
routing policy, injected into the orchestrator (which itself knows nothing of YAML).

Workers are built by ``workers.config.build_worker``, except ``kind: ray`` models, whose
Serve applications ``system2.ray.deploy`` deploys (or finds) on the config's cluster.

A policy that cannot be built (``PolicyBuildError``, e.g. a SelectLLM router that is
missing or trained for other models) is a ``ConfigError`` naming the config file and the
key path (``policy.router``)."""

from __future__ import annotations

from pathlib import Path

from orchestrator.orchestrator import Orchestrator
from policies.config import build_policy
from policies.errors import PolicyBuildError
from system2.config import ConfigError, ModelConfig, System2Config, load_config
from system2.logging import configure_logging
from system2.ray.config import RayClusterConfig, RayWorkerConfig
from workers import config as worker_configs
from workers.base import Worker
from workers.step_verifier_config import build_step_verifier

__all__ = ["build_orchestrator", "build_worker", "build_workers", "load_orchestrator"]


def build_worker(
    name: str,
    config: ModelConfig,
    *,
    cluster: RayClusterConfig | None = None,
    deploy: bool = True,
) -> Worker:
    """The worker of the model declared as ``name``. A ``ray`` model joins ``cluster``
    (default: a local one) and deploys its application there, unless ``deploy`` is False
    (then the application must already run: a ``--ray`` run's actors find their driver's)."""
    if isinstance(config, RayWorkerConfig):
        try:
            from system2.ray.deploy import ray_worker  # imports ray, an optional extra
        except ImportError as exc:
            raise ConfigError(
                f"model {name!r} is of kind 'ray', which needs Ray ({exc}): "
                "pip install 'system2[ray]'"
            ) from None
        return ray_worker(name, config, cluster or RayClusterConfig(), deploy=deploy)
    return worker_configs.build_worker(name, config)


def build_workers(config: System2Config, *, deploy: bool = True) -> dict[str, Worker]:
    """Every declared model's worker (this loads the models, or deploys them on Ray)."""
    return {
        name: build_worker(name, wc, cluster=config.ray, deploy=deploy)
        for name, wc in config.models.items()
    }


def build_orchestrator(config: System2Config, *, deploy: bool = True) -> Orchestrator:
    """Build every declared worker (this loads the models; ``deploy``: see
    ``build_worker``), the step verifier and the policy, and join them in an
    ``Orchestrator``; a policy that cannot be built is a ``ConfigError``."""
    workers = build_workers(config, deploy=deploy)
    step_verifier = None
    if config.step_verifier is not None:
        step_verifier = build_step_verifier(config.step_verifier, workers)
    try:
        policy = build_policy(config.policy, config.strategy)
    except PolicyBuildError as exc:
        where = f"{config.source}: policy.{exc.key} ({exc.value})"
        raise ConfigError(f"{where}: {exc.problem}") from None
    return Orchestrator(
        workers,
        policy,
        task=config.task,
        prompts=config.prompts,
        step_verifier=step_verifier,
    )


def load_orchestrator(path: str | Path, *, configure_logs: bool = True) -> Orchestrator:
    """Read the YAML config at ``path``, set up logging from it, and build the orchestrator.

    Example:
        >>> config = "examples/math_agent/math_agent.yaml"
        >>> orch = load_orchestrator(config)  # doctest: +SKIP
        >>> orch.answer_sync("What is 17 * 3?").answer  # doctest: +SKIP
        '51'
    """
    config = load_config(path)
    if configure_logs:
        configure_logging(config.logging.format, config.logging.level)
    return build_orchestrator(config)
