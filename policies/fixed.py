"""``fixed``: always the same model(s) and strategy. The baseline every router must beat."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.routing import Plan, RoutingPolicy
from orchestrator.strategies.config import StrategyConfig
from orchestrator.types import Query

__all__ = ["FixedPolicy", "FixedPolicyConfig"]


class FixedPolicyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["fixed"] = "fixed"
    models: tuple[str, ...] = Field(min_length=1, description="models to run, in order")
    strategy: StrategyConfig | None = Field(
        default=None, description="overrides the config's default strategy"
    )


class FixedPolicy(RoutingPolicy):
    """Plans the same models and strategy for every query.

    Example:
        >>> from orchestrator.strategies.config import GreedyConfig
        >>> FixedPolicy(("qwen",), GreedyConfig()).plan(Query(text="1+1?")).models
        ('qwen',)
    """

    def __init__(self, models: tuple[str, ...], strategy: StrategyConfig) -> None:
        self._plan = Plan(models=models, strategy=strategy, reason="fixed policy")

    def plan(self, query: Query) -> Plan:
        return self._plan

    def models(self) -> frozenset[str]:
        return frozenset(self._plan.models)
