"""SelectLLM (arXiv 2408.08545): a learned router's per-model confidences pick the models
to run for each query.

* ``policy``: the ``selectllm`` policy, its config and builder;
* ``rules``: MAXCONF, LABELLEDMAXCONF and WEIGHTEDMAXCONF as pure functions;
* ``labels``: the training label records and per-model statistics over them;
* ``router`` and ``train``: the query router, its persistence and its training (torch);
* ``replay``: policies replayed offline on collected labels.

This package exports what needs no torch; import the router and training from their
modules.
"""

from __future__ import annotations

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
    "ConfidenceSource",
    "LabelStats",
    "Pair",
    "SelectLLMPolicy",
    "SelectLLMPolicyConfig",
    "Selection",
    "SelectionRule",
    "build_selectllm_policy",
    "label_stats",
    "labelled_max_conf",
    "max_conf",
    "rank_models",
    "rule_strategy_conflict",
    "weighted_max_conf",
]
