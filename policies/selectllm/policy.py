"""``selectllm``: per query, a learned router's confidences pick the models to run
(SelectLLM, arXiv 2408.08545); the rules live in ``policies.selectllm.rules``.

Choices the paper leaves open:

* The pool: the config's ``models`` must be exactly the router's pool (the models it was
  trained on). A router for another pool, or a configured model the router does not know,
  is refused with both lists in the error: the router has no confidence for an unknown
  model, and silently dropping one of its own would change what the rules select.
* Rules: ``maxconf`` takes ``k`` or ``threshold`` (not both); ``labelled_maxconf`` and
  ``weighted_maxconf`` take ``threshold`` (default 0.5) and ``max_models``.
  ``weighted_maxconf`` needs the ``self_consistency`` strategy, the one that votes with
  the plan's weights (``rule_strategy_conflict``; the application checks it at load time
  against the strategy the policy plans, its own or the config's default).
* ``router`` is a directory written by ``system2 router train``; a relative path is
  relative to the working directory. Loading a config only validates it; the router (and
  its embedder) is loaded when the policy is built, and a router that cannot be used is a
  ``PolicyBuildError`` on ``router``.

Example:
    >>> from orchestrator.strategies.config import GreedyConfig
    >>> class Table:  # a hand-made confidence table in place of a trained router
    ...     models = ("small", "large")
    ...     latency = {"small": 1.0, "large": 3.0}
    ...     def confidences(self, texts):
    ...         return [{"small": 0.3, "large": 0.8} for _ in texts]
    >>> policy = SelectLLMPolicy(Table(), "maxconf", GreedyConfig())
    >>> policy.plan(Query(text="What is 2 + 2?")).models
    ('large',)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from orchestrator.routing import Plan, RoutingPolicy
from orchestrator.strategies.config import SelfConsistencyConfig, StrategyConfig
from orchestrator.types import Query
from policies.errors import PolicyBuildError
from policies.selectllm.rules import Selection, labelled_max_conf, max_conf, weighted_max_conf

__all__ = [
    "ConfidenceSource",
    "SelectLLMPolicy",
    "SelectLLMPolicyConfig",
    "SelectionRule",
    "build_selectllm_policy",
    "rule_strategy_conflict",
]

SelectionRule = Literal["maxconf", "labelled_maxconf", "weighted_maxconf"]


class ConfidenceSource(Protocol):
    """What the policy needs from a router (``QueryRouter`` is one): its pool, each
    model's latency, and per text each model's confidence."""

    @property
    def models(self) -> tuple[str, ...]: ...

    @property
    def latency(self) -> Mapping[str, float]: ...

    def confidences(self, texts: Sequence[str]) -> list[dict[str, float]]: ...


class SelectLLMPolicyConfig(BaseModel):
    """A trained router and the rule that turns its confidences into a plan.

    In YAML::

        policy:
          kind: selectllm
          models: [qwen-0.5b, qwen-1.5b]   # the router's pool, declared under models:
          router: routers/gsm               # written by `system2 router train`
          rule: weighted_maxconf
          max_models: 2
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["selectllm"] = "selectllm"
    models: tuple[str, ...] = Field(min_length=1, description="the router's pool")
    router: Path = Field(description="directory written by `system2 router train`")
    rule: SelectionRule
    k: int = Field(default=1, ge=1, description="maxconf: how many top models")
    threshold: float | None = Field(
        default=None, ge=0.0, le=1.0, description="maxconf: keep all >= it; others: label > it"
    )
    max_models: int | None = Field(default=None, ge=1, description="labelled rules: at most")
    strategy: StrategyConfig | None = Field(
        default=None, description="overrides the config's default strategy"
    )

    @model_validator(mode="after")
    def _rule_arguments(self) -> SelectLLMPolicyConfig:
        _check_rule_arguments(self.rule, self.k, self.threshold, self.max_models)
        if self.k > len(self.models):
            raise ValueError(f"k={self.k} is more than the {len(self.models)} models listed")
        return self


def rule_strategy_conflict(rule: SelectionRule, strategy: StrategyConfig) -> str | None:
    """Why ``rule`` cannot plan for ``strategy``, or None if they fit: ``weighted_maxconf``
    sets vote weights, which only ``self_consistency`` votes with."""
    if rule == "weighted_maxconf" and not isinstance(strategy, SelfConsistencyConfig):
        return (
            f"rule weighted_maxconf votes with confidences: it needs strategy "
            f"self_consistency, got {strategy.kind}"
        )
    return None


def _check_rule_arguments(
    rule: SelectionRule, k: int, threshold: float | None, max_models: int | None
) -> None:
    if rule == "maxconf":
        if max_models is not None:
            raise ValueError("max_models applies to the labelled rules, not maxconf (use k)")
        if threshold is not None and k != 1:
            raise ValueError("maxconf takes k or threshold, not both")
    elif k != 1:
        raise ValueError(f"k applies to rule maxconf only, not {rule} (use max_models)")


class SelectLLMPolicy(RoutingPolicy):
    """Plans the models ``rule`` picks from the router's confidences for each query."""

    def __init__(
        self,
        router: ConfidenceSource,
        rule: SelectionRule,
        strategy: StrategyConfig,
        *,
        k: int = 1,
        threshold: float | None = None,
        max_models: int | None = None,
    ) -> None:
        if rule not in ("maxconf", "labelled_maxconf", "weighted_maxconf"):
            raise ValueError(
                f"unknown rule {rule!r}; known: maxconf, labelled_maxconf, weighted_maxconf"
            )
        _check_rule_arguments(rule, k, threshold, max_models)
        conflict = rule_strategy_conflict(rule, strategy)
        if conflict is not None:
            raise ValueError(conflict)
        self.router, self.rule, self.strategy = router, rule, strategy
        self.k, self.threshold, self.max_models = k, threshold, max_models

    def plan(self, query: Query) -> Plan:
        confidences = self.router.confidences([query.text])[0]
        selection = self.select(confidences)
        return Plan(
            models=selection.models,
            strategy=self.strategy,
            confidences=confidences,
            vote_weights=selection.weights,
            reason=selection.reason,
        )

    def models(self) -> frozenset[str]:
        return frozenset(self.router.models)

    def select(self, confidences: Mapping[str, float]) -> Selection:
        """The models (and vote weights) the rule picks given per-model confidences."""
        latency = self.router.latency
        if self.rule == "maxconf":
            return max_conf(confidences, latency, k=self.k, threshold=self.threshold)
        threshold = 0.5 if self.threshold is None else self.threshold
        rule = labelled_max_conf if self.rule == "labelled_maxconf" else weighted_max_conf
        return rule(confidences, latency, threshold=threshold, max_models=self.max_models)


def build_selectllm_policy(
    config: SelectLLMPolicyConfig, strategy: StrategyConfig
) -> SelectLLMPolicy:
    """Load the router (and its embedder) and build the policy planning ``strategy``; a
    router that cannot be read, or whose pool differs from ``config.models``, is a
    ``PolicyBuildError`` on ``router``."""
    # Here, not at the top: the router needs torch, which loading a config must not import.
    from policies.selectllm.router import QueryRouter, RouterLoadError, read_router_meta

    try:
        # The pool is checked before the (slow) embedder loads.
        pool = sorted(read_router_meta(config.router)["models"])
        if pool != sorted(config.models):
            raise PolicyBuildError(
                "router",
                config.router,
                f"the router was trained for models {pool}, the policy lists "
                f"{sorted(config.models)}; train a router for this pool or list its models",
            )
        router = QueryRouter.load(config.router)
    except RouterLoadError as exc:
        raise PolicyBuildError("router", config.router, str(exc)) from None
    return SelectLLMPolicy(
        router,
        config.rule,
        strategy,
        k=config.k,
        threshold=config.threshold,
        max_models=config.max_models,
    )
