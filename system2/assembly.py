"""Building a runnable ``Orchestrator`` from a validated config: workers, step verifier and
routing policy, injected into the orchestrator (which itself knows nothing of YAML).

A policy that cannot be built (``PolicyBuildError``, e.g. a SelectLLM router that is
missing or trained for other models) is a ``ConfigError`` naming the config file and the
key path (``policy.router``)."""

from __future__ import annotations

from pathlib import Path

from orchestrator.orchestrator import Orchestrator
from policies.config import build_policy
from policies.errors import PolicyBuildError
from system2.config import ConfigError, System2Config, load_config
from system2.logging import configure_logging
from workers.config import build_worker
from workers.step_verifier_config import build_step_verifier

__all__ = ["build_orchestrator", "load_orchestrator"]


def build_orchestrator(config: System2Config) -> Orchestrator:
    """Build every declared worker (this loads the models), the step verifier and the
    policy, and join them in an ``Orchestrator``; a policy that cannot be built is a
    ``ConfigError``."""
    workers = {name: build_worker(name, wc) for name, wc in config.models.items()}
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
