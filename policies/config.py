"""Policy configs (one per ``kind``), the strategy a policy plans, and the explicit registry
that builds policies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import Field

from orchestrator.routing import RoutingPolicy
from orchestrator.strategies.config import StrategyConfig
from policies.constant import (
    AllModelsPolicy,
    AllModelsPolicyConfig,
    CascadePolicy,
    CascadePolicyConfig,
    FixedPolicy,
    FixedPolicyConfig,
)
from policies.random_subset import RandomSubsetPolicy, RandomSubsetPolicyConfig
from policies.round_robin import RoundRobinPolicy, RoundRobinPolicyConfig
from policies.selectllm.compute_aware import ComputeAwarePolicyConfig, build_compute_aware_policy
from policies.selectllm.policy import SelectLLMPolicyConfig, build_selectllm_policy

__all__ = ["POLICY_BUILDERS", "PolicyConfig", "build_policy", "policy_strategy"]

PolicyConfig = Annotated[
    FixedPolicyConfig
    | AllModelsPolicyConfig
    | RandomSubsetPolicyConfig
    | RoundRobinPolicyConfig
    | CascadePolicyConfig
    | SelectLLMPolicyConfig
    | ComputeAwarePolicyConfig,
    Field(discriminator="kind"),
]

POLICY_BUILDERS: dict[str, Callable[[Any, StrategyConfig], RoutingPolicy]] = {
    "fixed": lambda c, strategy: FixedPolicy(c.models, strategy),
    "all": lambda c, strategy: AllModelsPolicy(c.models, strategy),
    "random": lambda c, strategy: RandomSubsetPolicy(c.models, strategy, k=c.k, seed=c.seed),
    "round_robin": lambda c, strategy: RoundRobinPolicy(c.models, strategy),
    "cascade": lambda c, strategy: CascadePolicy(c.models, c.strategy),
    "selectllm": build_selectllm_policy,
    "compute_aware": build_compute_aware_policy,
}
"""Per ``kind``: build the policy from its config and the strategy it plans."""


def policy_strategy(config: PolicyConfig, default_strategy: StrategyConfig) -> StrategyConfig:
    """The strategy the policy's plans use: its own ``strategy`` if it sets one, else the
    config's default (``compute_aware`` plans each arm's own; this is its default)."""
    return config.strategy or default_strategy


def build_policy(config: PolicyConfig, default_strategy: StrategyConfig) -> RoutingPolicy:
    """Build the policy a config names; unknown kinds list the known ones. A policy that
    cannot be built (e.g. a SelectLLM router that cannot be read) is a ``PolicyBuildError``."""
    try:
        builder = POLICY_BUILDERS[config.kind]
    except KeyError:
        known = ", ".join(sorted(POLICY_BUILDERS))
        raise ValueError(f"unknown policy kind {config.kind!r}; known: {known}") from None
    return builder(config, policy_strategy(config, default_strategy))
