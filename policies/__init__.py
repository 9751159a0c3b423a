"""Deciding what to run: routing policies turn a query into a ``Plan``.

The seam (``RoutingPolicy``, ``Plan``) belongs to the orchestrator; this package holds its
implementations: constant plans (fixed, all, cascade), random subsets, round robin, and the
learned SelectLLM router (``policies.selectllm``).
"""

from __future__ import annotations

from orchestrator.routing import Plan, RoutingPolicy
from policies.config import POLICY_BUILDERS, PolicyConfig, build_policy
from policies.fixed import FixedPolicy, FixedPolicyConfig
from policies.selectllm.policy import ConfidenceSource, SelectLLMPolicy, SelectLLMPolicyConfig
from policies.selectllm.rules import (
    Selection,
    labelled_max_conf,
    max_conf,
    rank_models,
    weighted_max_conf,
)

__all__ = [
    "POLICY_BUILDERS",
    "ConfidenceSource",
    "FixedPolicy",
    "FixedPolicyConfig",
    "Plan",
    "PolicyConfig",
    "RoutingPolicy",
    "SelectLLMPolicy",
    "SelectLLMPolicyConfig",
    "Selection",
    "build_policy",
    "labelled_max_conf",
    "max_conf",
    "rank_models",
    "weighted_max_conf",
]
