"""system2, the application: load a YAML config, build an orchestrator from it, ask it.

Example:
    >>> import system2
    >>> orch = system2.load_orchestrator("examples/math_agent/math_agent.yaml")  # doctest: +SKIP
    >>> query = system2.Query(text="What is 17 * 3?", task="math")
    >>> orch.answer_sync(query).answer  # doctest: +SKIP
    '51'

Embedding without YAML: ``from orchestrator import Orchestrator`` and inject the workers and
the policy yourself.
"""

from __future__ import annotations

from orchestrator.orchestrator import Orchestrator
from orchestrator.types import Answer, Query, Trace, Usage
from system2.assembly import build_orchestrator, load_orchestrator
from system2.config import ConfigError, LoggingConfig, System2Config, load_config, parse_config

__all__ = [
    "Answer",
    "ConfigError",
    "LoggingConfig",
    "Orchestrator",
    "Query",
    "System2Config",
    "Trace",
    "Usage",
    "build_orchestrator",
    "load_config",
    "load_orchestrator",
    "parse_config",
]
