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

__all__ = [
    "POLICY_BUILDERS",
    "FixedPolicy",
    "FixedPolicyConfig",
    "Plan",
    "PolicyConfig",
    "RoutingPolicy",
    "Selection",
    "build_policy",
    "labelled_max_conf",
    "max_conf",
    "rank_models",
    "weighted_max_conf",
]
