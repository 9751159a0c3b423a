"""Constant plans: ``fixed``, ``all`` and ``cascade`` plan the same models and strategy for
every query. They are the baselines every router must beat.

Example:
    >>> from orchestrator.strategies.config import GreedyConfig
    >>> FixedPolicy(("qwen",), GreedyConfig()).plan(Query(text="1+1?")).models
    ('qwen',)
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.routing import Plan, RoutingPolicy
from orchestrator.strategies.config import CascadeConfig, StrategyConfig
from orchestrator.types import Query
from policies.model_list import ModelListConfig

__all__ = [
    "AllModelsPolicy",
    "AllModelsPolicyConfig",
    "CascadePolicy",
    "CascadePolicyConfig",
    "ConstantPolicy",
    "FixedPolicy",
    "FixedPolicyConfig",
]


class FixedPolicyConfig(ModelListConfig):
    kind: Literal["fixed"] = "fixed"


class AllModelsPolicyConfig(ModelListConfig):
    kind: Literal["all"] = "all"


class CascadePolicyConfig(BaseModel):
    """``models`` cheapest first, run by the ``cascade`` strategy."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["cascade"] = "cascade"
    models: tuple[str, ...] = Field(min_length=1, description="cheapest first")
    strategy: CascadeConfig = CascadeConfig()


class ConstantPolicy(RoutingPolicy):
    """Plans one given ``Plan`` for every query."""

    def __init__(self, plan: Plan) -> None:
        self._plan = plan

    def plan(self, query: Query) -> Plan:
        return self._plan

    def models(self) -> frozenset[str]:
        return frozenset(self._plan.models)


class FixedPolicy(ConstantPolicy):
    """The same model(s) and strategy for every query."""

    def __init__(self, models: tuple[str, ...], strategy: StrategyConfig) -> None:
        super().__init__(Plan(models=models, strategy=strategy, reason="fixed policy"))


class AllModelsPolicy(ConstantPolicy):
    """Every model, every query; with self-consistency their samples share one vote."""

    def __init__(self, models: tuple[str, ...], strategy: StrategyConfig) -> None:
        super().__init__(Plan(models=models, strategy=strategy, reason="all models"))


class CascadePolicy(ConstantPolicy):
    """The models cheapest first, run by the ``cascade`` strategy, which escalates to the
    next model only while the vote is not decisive."""

    def __init__(self, models: tuple[str, ...], strategy: CascadeConfig) -> None:
        super().__init__(Plan(models=models, strategy=strategy, reason="cascade, cheapest first"))
