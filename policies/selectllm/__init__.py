"""SelectLLM (arXiv 2408.08545): a learned router's per-model confidences pick the models
to run for each query.

* ``policy``: the ``selectllm`` policy, its config and builder;
* ``arms`` and ``compute_aware``: arms, (model, strategy) pairs labelled from collected
  samples, and the ``compute_aware`` policy choosing one per query on P(correct) and cost;
* ``curve``: accuracy-cost curves, random mixing between arms, the cascade's margin;
* ``rules``: MAXCONF, LABELLEDMAXCONF and WEIGHTEDMAXCONF as pure functions;
* ``labels``: the training label records and per-model statistics over them;
* ``router`` and ``train``: the query router, its persistence and its training (torch);
* ``replay``: policies replayed offline on collected labels.

This package exports what needs no torch; import the router and training from their
modules.
"""

from __future__ import annotations

from policies.selectllm.arms import ArmConfig, ArmLabelError, ArmOutcome
from policies.selectllm.compute_aware import (
    ComputeAwarePolicy,
    ComputeAwarePolicyConfig,
    build_compute_aware_policy,
    choose_by_cost_weight,
    choose_by_threshold,
)
from policies.selectllm.labels import LabelStats, Pair, label_stats
from policies.selectllm.policy import (
    ConfidenceSource,
    SelectionRule,
    SelectLLMPolicy,
    SelectLLMPolicyConfig,
    build_selectllm_policy,
    rule_strategy_conflict,
)
from policies.selectllm.rules import (
    Selection,
    labelled_max_conf,
    max_conf,
    rank_models,
    weighted_max_conf,
)

__all__ = [
    "ArmConfig",
    "ArmLabelError",
    "ArmOutcome",
    "ComputeAwarePolicy",
    "ComputeAwarePolicyConfig",
    "ConfidenceSource",
    "LabelStats",
    "Pair",
    "SelectLLMPolicy",
    "SelectLLMPolicyConfig",
    "Selection",
    "SelectionRule",
    "build_compute_aware_policy",
    "build_selectllm_policy",
    "choose_by_cost_weight",
    "choose_by_threshold",
    "label_stats",
    "labelled_max_conf",
    "max_conf",
    "rank_models",
    "rule_strategy_conflict",
    "weighted_max_conf",
]
