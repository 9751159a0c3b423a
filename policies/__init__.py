"""Deciding what to run: routing policies turn a query into a ``Plan``.

The seam (``RoutingPolicy``, ``Plan``) belongs to the orchestrator; this package holds its
implementations: constant plans (``fixed``, ``all``, ``cascade``), random subsets, round
robin, the learned SelectLLM router and the compute-aware arm router
(``policies.selectllm``), each with its config, and
``build_policy``, which builds one from its config. Training the router and loading a saved
one need torch: import them from ``policies.selectllm.train`` and ``.router``.
"""

from __future__ import annotations

from orchestrator.routing import Plan, RoutingPolicy
from policies.config import POLICY_BUILDERS, PolicyConfig, build_policy, policy_strategy
from policies.constant import (
    AllModelsPolicy,
    AllModelsPolicyConfig,
    CascadePolicy,
    CascadePolicyConfig,
    ConstantPolicy,
    FixedPolicy,
    FixedPolicyConfig,
)
from policies.errors import PolicyBuildError
from policies.model_list import ModelListConfig
from policies.random_subset import RandomSubsetPolicy, RandomSubsetPolicyConfig
from policies.round_robin import RoundRobinPolicy, RoundRobinPolicyConfig
from policies.selectllm import (
    ArmConfig,
    ComputeAwarePolicy,
    ComputeAwarePolicyConfig,
    ConfidenceSource,
    Selection,
    SelectionRule,
    SelectLLMPolicy,
    SelectLLMPolicyConfig,
    build_selectllm_policy,
    labelled_max_conf,
    max_conf,
    rank_models,
    rule_strategy_conflict,
    weighted_max_conf,
)

__all__ = [
    "POLICY_BUILDERS",
    "AllModelsPolicy",
    "AllModelsPolicyConfig",
    "ArmConfig",
    "CascadePolicy",
    "CascadePolicyConfig",
    "ComputeAwarePolicy",
    "ComputeAwarePolicyConfig",
    "ConfidenceSource",
    "ConstantPolicy",
    "FixedPolicy",
    "FixedPolicyConfig",
    "ModelListConfig",
    "Plan",
    "PolicyBuildError",
    "PolicyConfig",
    "RandomSubsetPolicy",
    "RandomSubsetPolicyConfig",
    "RoundRobinPolicy",
    "RoundRobinPolicyConfig",
    "RoutingPolicy",
    "SelectLLMPolicy",
    "SelectLLMPolicyConfig",
    "Selection",
    "SelectionRule",
    "build_policy",
    "build_selectllm_policy",
    "labelled_max_conf",
    "max_conf",
    "policy_strategy",
    "rank_models",
    "rule_strategy_conflict",
    "weighted_max_conf",
]
