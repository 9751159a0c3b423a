"""``compute_aware``: per query, a router's calibrated P(correct | query, arm) and each
arm's measured cost choose one arm, a (model, strategy) pair (``policies.selectllm.arms``).

Two rules, each with one knob; sweeping the knob draws the accuracy-cost curve:

* ``threshold`` (tau): the cheapest arm whose P clears tau (P >= tau); if none does, the
  arm with the highest P. Raising tau never makes a query's arm cheaper.
* ``cost_weight`` (lambda): the arm maximising ``P - lambda * cost / max cost`` (costs
  scaled by the dearest arm's, so lambda = 1 trades the whole cost range for one unit of
  probability). Raising lambda never makes a query's arm dearer.

Equal scores go to the cheaper arm, then the name. Costs are the router's mean measured
cost per arm over its training labels: ``seconds`` (engine seconds at the worker seam) or
``tokens`` (generated tokens). The router is a ``QueryRouter`` trained with one column per
arm (``system2 router train --arms``); the policy refuses a router trained for other arms.

Example:
    >>> choose_by_threshold({"cheap": 0.55, "dear": 0.9}, {"cheap": 1.0, "dear": 4.0}, 0.5)
    'cheap'
    >>> choose_by_threshold({"cheap": 0.55, "dear": 0.9}, {"cheap": 1.0, "dear": 4.0}, 0.6)
    'dear'
    >>> choose_by_cost_weight({"cheap": 0.55, "dear": 0.9}, {"cheap": 1.0, "dear": 4.0}, 0.5)
    'cheap'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from orchestrator.routing import Plan, RoutingPolicy
from orchestrator.strategies.config import StrategyConfig
from orchestrator.types import Query
from policies.errors import PolicyBuildError
from policies.selectllm.arms import ArmConfig, check_arms

__all__ = [
    "ArmRule",
    "ArmScorer",
    "ComputeAwarePolicy",
    "ComputeAwarePolicyConfig",
    "CostKind",
    "build_compute_aware_policy",
    "choose_by_cost_weight",
    "choose_by_threshold",
]

ArmRule = Literal["threshold", "cost_weight"]
CostKind = Literal["seconds", "tokens"]


class ArmScorer(Protocol):
    """What the policy needs from a router (``QueryRouter`` trained on arms is one): its
    columns (arm names), each arm's mean seconds and tokens, and P per text and arm."""

    @property
    def models(self) -> tuple[str, ...]: ...

    @property
    def latency(self) -> Mapping[str, float]: ...

    @property
    def tokens(self) -> Mapping[str, float]: ...

    def confidences(self, texts: Sequence[str]) -> list[dict[str, float]]: ...


def _cheapest_first(costs: Mapping[str, float]) -> list[str]:
    return sorted(costs, key=lambda a: (costs[a], a))


def choose_by_threshold(p: Mapping[str, float], costs: Mapping[str, float], tau: float) -> str:
    """The cheapest arm with ``p >= tau``; none clears it: the most probable (cheaper on
    ties)."""
    ranked = _cheapest_first(costs)
    for arm in ranked:
        if p[arm] >= tau:
            return arm
    return max(ranked, key=lambda a: p[a])  # max keeps the first (cheapest) of equals


def choose_by_cost_weight(
    p: Mapping[str, float], costs: Mapping[str, float], cost_weight: float
) -> str:
    """The arm maximising ``p - cost_weight * cost / max(costs)`` (cheaper on ties)."""
    scale = max(costs.values()) or 1.0
    ranked = _cheapest_first(costs)
    return max(ranked, key=lambda a: p[a] - cost_weight * costs[a] / scale)


class ComputeAwarePolicyConfig(BaseModel):
    """Arms, the router that scores them, and the rule with its knob.

    In YAML::

        policy:
          kind: compute_aware
          router: benchmarks/results/routers/arms   # `system2 router train --arms`
          rule: threshold        # or cost_weight (with cost_weight: 0.3)
          threshold: 0.6
          cost: seconds          # or tokens
          arms:
            - {name: smol-greedy, model: smollm2-135m, strategy: {kind: greedy, max_tokens: 256}}
            - name: qwen-1.5b-sc5
              model: qwen-1.5b
              strategy: {kind: self_consistency, n: 5, temperature: 0.7, max_tokens: 256}
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["compute_aware"] = "compute_aware"
    arms: tuple[ArmConfig, ...] = Field(min_length=1)
    router: Path = Field(description="directory written by `system2 router train --arms`")
    rule: ArmRule = "threshold"
    threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    cost_weight: float | None = Field(default=None, ge=0.0)
    cost: CostKind = "seconds"

    @field_validator("arms")
    @classmethod
    def _distinct(cls, arms: tuple[ArmConfig, ...]) -> tuple[ArmConfig, ...]:
        check_arms(arms)
        return arms

    @model_validator(mode="after")
    def _knob(self) -> ComputeAwarePolicyConfig:
        needed, other = (
            ("threshold", "cost_weight")
            if self.rule == "threshold"
            else ("cost_weight", "threshold")
        )
        if getattr(self, needed) is None:
            raise ValueError(f"rule {self.rule} needs `{needed}`")
        if getattr(self, other) is not None:
            raise ValueError(f"`{other}` does not apply to rule {self.rule}")
        return self

    @property
    def models(self) -> tuple[str, ...]:
        """The pool models the arms run, in arm order, each once."""
        return tuple(dict.fromkeys(a.model for a in self.arms))

    @property
    def strategy(self) -> None:
        """Each arm brings its own strategy; the config's default is never planned."""
        return None


class ComputeAwarePolicy(RoutingPolicy):
    """Plans, per query, the arm ``rule`` picks from the router's P and the arms' costs."""

    def __init__(
        self,
        router: ArmScorer,
        arms: Sequence[ArmConfig],
        *,
        rule: ArmRule = "threshold",
        knob: float,
        cost: CostKind = "seconds",
    ) -> None:
        check_arms(arms)
        names = sorted(a.name for a in arms)
        if sorted(router.models) != names:
            raise ValueError(
                f"the router scores arms {sorted(router.models)}, the policy declares {names}"
            )
        if rule not in ("threshold", "cost_weight"):
            raise ValueError(f"unknown rule {rule!r}; known: threshold, cost_weight")
        self.router, self.rule, self.knob, self.cost = router, rule, knob, cost
        self.arms = {a.name: a for a in arms}
        table = router.latency if cost == "seconds" else router.tokens
        self.costs = {a: float(table[a]) for a in self.arms}

    def choose(self, p: Mapping[str, float]) -> str:
        """The arm name for per-arm probabilities ``p``."""
        if self.rule == "threshold":
            return choose_by_threshold(p, self.costs, self.knob)
        return choose_by_cost_weight(p, self.costs, self.knob)

    def plan(self, query: Query) -> Plan:
        p = self.router.confidences([query.text])[0]
        arm = self.arms[self.choose(p)]
        strategy: StrategyConfig = arm.strategy
        return Plan(
            models=(arm.model,),
            strategy=strategy,
            confidences={arm.model: p[arm.name]},
            reason=f"compute_aware {self.rule}={self.knob:g}: arm {arm.name} "
            f"(P={p[arm.name]:.2f}, mean {self.cost} {self.costs[arm.name]:.3g})",
        )

    def models(self) -> frozenset[str]:
        return frozenset(a.model for a in self.arms.values())


def build_compute_aware_policy(
    config: ComputeAwarePolicyConfig, strategy: StrategyConfig
) -> ComputeAwarePolicy:
    """Load the arm router and build the policy (``strategy``, the config's default, is
    not used: every arm has its own). A router that cannot be read, or that was trained
    for other arms, is a ``PolicyBuildError`` on ``router``."""
    # Here, not at the top: the router needs torch, which loading a config must not import.
    from policies.selectllm.router import QueryRouter, RouterLoadError, read_router_meta

    try:
        meta = read_router_meta(config.router)
        _check_router_arms(config, meta["models"], meta.get("training", {}).get("arms"))
        router = QueryRouter.load(config.router)
    except RouterLoadError as exc:
        raise PolicyBuildError("router", config.router, str(exc)) from None
    knob = config.threshold if config.rule == "threshold" else config.cost_weight
    assert knob is not None  # the config's validator requires the rule's knob
    return ComputeAwarePolicy(router, config.arms, rule=config.rule, knob=knob, cost=config.cost)


def _check_router_arms(
    config: ComputeAwarePolicyConfig, columns: Sequence[str], trained: object
) -> None:
    names = sorted(a.name for a in config.arms)
    if sorted(columns) != names:
        raise PolicyBuildError(
            "router",
            config.router,
            f"the router was trained for arms {sorted(columns)}, the policy declares {names}",
        )
    if not isinstance(trained, Mapping):
        raise PolicyBuildError(
            "router", config.router, "not an arm router (no arms recorded in router.json)"
        )
    for arm in config.arms:
        recorded = trained.get(arm.name)
        mine = arm.model_dump(mode="json")
        if recorded != mine:
            raise PolicyBuildError(
                "router",
                config.router,
                f"arm {arm.name!r} is declared as {mine}, the router was trained on {recorded}",
            )
