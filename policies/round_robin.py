"""``round_robin``: one model per query, taking the models in turn."""

from __future__ import annotations

import itertools
import threading
from typing import Literal

from orchestrator.routing import Plan, RoutingPolicy
from orchestrator.strategies.config import StrategyConfig
from orchestrator.types import Query
from policies.model_list import ModelListConfig

__all__ = ["RoundRobinPolicy", "RoundRobinPolicyConfig"]


class RoundRobinPolicyConfig(ModelListConfig):
    kind: Literal["round_robin"] = "round_robin"


class RoundRobinPolicy(RoutingPolicy):
    """One model per query, taking the models in turn (thread-safe)."""

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
