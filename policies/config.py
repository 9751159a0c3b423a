"""Policy configs (one per ``kind``) and the explicit registry that builds policies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import Field

from orchestrator.routing import RoutingPolicy
from orchestrator.strategies.config import StrategyConfig
from policies.baselines import (
    AllModelsPolicy,
    AllModelsPolicyConfig,
    CascadePolicy,
    CascadePolicyConfig,
    RandomSubsetPolicy,
    RandomSubsetPolicyConfig,
    RoundRobinPolicy,
    RoundRobinPolicyConfig,
)
from policies.fixed import FixedPolicy, FixedPolicyConfig
from policies.selectllm.policy import SelectLLMPolicyConfig, build_selectllm_policy

__all__ = ["POLICY_BUILDERS", "PolicyConfig", "build_policy"]

PolicyConfig = Annotated[
    FixedPolicyConfig
    | AllModelsPolicyConfig
    | RandomSubsetPolicyConfig
    | RoundRobinPolicyConfig
    | CascadePolicyConfig
    | SelectLLMPolicyConfig,
    Field(discriminator="kind"),
]


def _build_fixed(config: Any, default_strategy: StrategyConfig) -> RoutingPolicy:
    return FixedPolicy(config.models, config.strategy or default_strategy)


POLICY_BUILDERS: dict[str, Callable[[Any, StrategyConfig], RoutingPolicy]] = {
    "fixed": _build_fixed,
    "all": lambda c, default: AllModelsPolicy(c.models, c.strategy or default),
    "random": lambda c, default: RandomSubsetPolicy(
        c.models, c.strategy or default, k=c.k, seed=c.seed
    ),
    "round_robin": lambda c, default: RoundRobinPolicy(c.models, c.strategy or default),
    "cascade": lambda c, default: CascadePolicy(c.models, c.strategy),
    "selectllm": build_selectllm_policy,
}


def build_policy(config: PolicyConfig, default_strategy: StrategyConfig) -> RoutingPolicy:
    """Build the policy a config names; unknown kinds list the known ones."""
    try:
        builder = POLICY_BUILDERS[config.kind]
    except KeyError:
        known = ", ".join(sorted(POLICY_BUILDERS))
        raise ValueError(f"unknown policy kind {config.kind!r}; known: {known}") from None
    return builder(config, default_strategy)
