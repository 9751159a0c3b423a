"""Deciding what to run: routing policies turn a query into a plan.

Policies use orchestrator's data types and orchestrator builds policies, so: code inside
``orchestrator`` imports this package's submodules (``policies.config``), never the package,
and this package loads ``orchestrator`` before its own submodules. Either can then be
imported first.
"""

from __future__ import annotations

import orchestrator  # noqa: F401 - must finish initialising before policies.base imports it
from policies.base import Plan, RoutingPolicy
from policies.config import POLICY_BUILDERS, PolicyConfig, build_policy
from policies.fixed import FixedPolicy, FixedPolicyConfig
from policies.selection import (
    Selection,
    labelled_max_conf,
    max_conf,
    rank_models,
    weighted_max_conf,
)
from policies.selectllm import ConfidenceSource, SelectLLMPolicy, SelectLLMPolicyConfig

__all__ = [
    "POLICY_BUILDERS",
    "ConfidenceSource",
    "FixedPolicy",
    "FixedPolicyConfig",
    "Plan",
    "PolicyConfig",
    "QueryRouter",
    "RoutingPolicy",
    "SelectLLMPolicy",
    "SelectLLMPolicyConfig",
    "Selection",
    "build_policy",
    "collect_labels",
    "labelled_max_conf",
    "max_conf",
    "rank_models",
    "read_labels",
    "train_router",
    "weighted_max_conf",
]

# Imported on first use: the router and its training import torch, and the collector
# imports orchestrator.orchestrator, which imports this package.
_LAZY = {
    "QueryRouter": "policies.router",
    "collect_labels": "policies.collect",
    "read_labels": "policies.collect",
    "train_router": "policies.train_router",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'policies' has no attribute {name!r}")
