"""``random``: ``k`` of the models drawn at random per query, reproducibly."""

from __future__ import annotations

import random
from typing import Literal

from pydantic import Field, model_validator

from orchestrator.routing import Plan, RoutingPolicy
from orchestrator.strategies.config import StrategyConfig
from orchestrator.types import Query
from policies.model_list import ModelListConfig

__all__ = ["RandomSubsetPolicy", "RandomSubsetPolicyConfig"]


class RandomSubsetPolicyConfig(ModelListConfig):
    kind: Literal["random"] = "random"
    k: int = Field(default=1, ge=1)
    seed: int = 0

    @model_validator(mode="after")
    def _k_fits(self) -> RandomSubsetPolicyConfig:
        if self.k > len(self.models):
            raise ValueError(f"k={self.k} is more than the {len(self.models)} models listed")
        return self


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
