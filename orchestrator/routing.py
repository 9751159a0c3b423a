"""The routing seam: a policy turns a query into a ``Plan``.

A policy implements ``plan(query)``; the orchestrator runs what it returns. The reasons
and confidences a policy gives are kept in the query's trace.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.strategies.config import StrategyConfig
from orchestrator.types import Query

__all__ = ["Plan", "RoutingPolicy"]


class Plan(BaseModel):
    """Which models to run (in preference order), with which strategy, and why."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    models: tuple[str, ...] = Field(min_length=1)
    strategy: StrategyConfig
    confidences: Mapping[str, float] = Field(default_factory=dict)
    vote_weights: Mapping[str, float] = Field(
        default_factory=dict,
        description="per-model vote weight; empty means one vote per candidate",
    )
    reason: str = ""


class RoutingPolicy(abc.ABC):
    """Decides, per query, which models and strategy to use."""

    @abc.abstractmethod
    def plan(self, query: Query) -> Plan:
        """The plan for ``query``."""

    def models(self) -> frozenset[str]:
        """Every model name this policy may plan; checked against the configured models."""
        return frozenset()
