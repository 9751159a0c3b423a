"""Baseline routing policies: every model, a random subset, round robin, and a cascade.

All of them are query-blind; a learned router (SelectLLM) must beat them to earn its keep.
"""

from __future__ import annotations

import itertools
import random
import threading
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from orchestrator.routing import Plan, RoutingPolicy
from orchestrator.strategies.config import CascadeConfig, StrategyConfig
from orchestrator.types import Query

__all__ = [
    "AllModelsPolicy",
    "AllModelsPolicyConfig",
    "CascadePolicy",
    "CascadePolicyConfig",
    "RandomSubsetPolicy",
    "RandomSubsetPolicyConfig",
    "RoundRobinPolicy",
    "RoundRobinPolicyConfig",
]


class _PolicyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    models: tuple[str, ...] = Field(min_length=1)
    strategy: StrategyConfig | None = Field(
        default=None, description="overrides the config's default strategy"
    )


class AllModelsPolicyConfig(_PolicyConfig):
    kind: Literal["all"] = "all"


class RandomSubsetPolicyConfig(_PolicyConfig):
    kind: Literal["random"] = "random"
    k: int = Field(default=1, ge=1)
    seed: int = 0

    @model_validator(mode="after")
    def _k_fits(self) -> RandomSubsetPolicyConfig:
        if self.k > len(self.models):
            raise ValueError(f"k={self.k} is more than the {len(self.models)} models listed")
        return self


class RoundRobinPolicyConfig(_PolicyConfig):
    kind: Literal["round_robin"] = "round_robin"


class CascadePolicyConfig(BaseModel):
    """``models`` cheapest first, run by the ``cascade`` strategy."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["cascade"] = "cascade"
    models: tuple[str, ...] = Field(min_length=1, description="cheapest first")
    strategy: CascadeConfig = CascadeConfig()


class AllModelsPolicy(RoutingPolicy):
    """Every model, every query; with self-consistency their samples share one vote."""

    def __init__(self, models: tuple[str, ...], strategy: StrategyConfig) -> None:
        self._plan = Plan(models=models, strategy=strategy, reason="all models")

    def plan(self, query: Query) -> Plan:
        return self._plan

    def models(self) -> frozenset[str]:
        return frozenset(self._plan.models)


class RandomSubsetPolicy(RoutingPolicy):
    """``k`` models drawn at random, reproducibly per (seed, query id)."""

    def __init__(
        self, models: tuple[str, ...], strategy: StrategyConfig, *, k: int, seed: int
    ) -> None:
        self._models, self._strategy, self._k, self._seed = models, strategy, k, seed

    def plan(self, query: Query) -> Plan:
        chosen = random.Random(f"{self._seed}:{query.id}").sample(self._models, self._k)
        return Plan(
            models=tuple(chosen), strategy=self._strategy, reason=f"random {self._k} of models"
        )

    def models(self) -> frozenset[str]:
        return frozenset(self._models)


class RoundRobinPolicy(RoutingPolicy):
    """One model per query, taking the models in turn."""

    def __init__(self, models: tuple[str, ...], strategy: StrategyConfig) -> None:
        self._models, self._strategy = models, strategy
        self._turn = itertools.cycle(models)
        self._lock = threading.Lock()

    def plan(self, query: Query) -> Plan:
        with self._lock:
            model = next(self._turn)
        return Plan(models=(model,), strategy=self._strategy, reason="round robin")

    def models(self) -> frozenset[str]:
        return frozenset(self._models)


class CascadePolicy(AllModelsPolicy):
    """The models cheapest first, run by the ``cascade`` strategy, which escalates to the
    next model only while the vote is not decisive."""

    def __init__(self, models: tuple[str, ...], strategy: CascadeConfig) -> None:
        self._plan = Plan(models=models, strategy=strategy, reason="cascade, cheapest first")
