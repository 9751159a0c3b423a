"""SelectLLM's selection rules on hand-made confidences."""

from __future__ import annotations

import pytest

from policies.selectllm.rules import labelled_max_conf, max_conf, rank_models, weighted_max_conf

LATENCY = {"small": 1.0, "medium": 2.0, "large": 4.0}


def test_rank_breaks_confidence_ties_by_latency() -> None:
    """Equal confidences rank the lower-latency model first."""
    conf = {"small": 0.7, "medium": 0.9, "large": 0.7}
    assert rank_models(conf, LATENCY) == ["medium", "small", "large"]


def test_rank_needs_latency_for_every_model() -> None:
    """A model without a known latency is an error naming it."""
    with pytest.raises(ValueError, match="huge"):
        rank_models({"huge": 0.5}, LATENCY)


def test_max_conf_top_k_and_threshold() -> None:
    """MAXCONF keeps the top k, or every model at or above the threshold (at least one)."""
    conf = {"small": 0.2, "medium": 0.6, "large": 0.9}
    assert max_conf(conf, LATENCY, k=2).models == ("large", "medium")
    assert max_conf(conf, LATENCY, threshold=0.6).models == ("large", "medium")
    assert max_conf(conf, LATENCY, threshold=0.95).models == ("large",)


def test_labelled_max_conf_positive_models_or_fallback() -> None:
    """LABELLEDMAXCONF keeps models labelled positive, else falls back to the most confident."""
    assert labelled_max_conf({"small": 0.8, "medium": 0.3, "large": 0.6}, LATENCY).models == (
        "small",
        "large",
    )
    fallback = labelled_max_conf({"small": 0.1, "medium": 0.4, "large": 0.4}, LATENCY)
    assert fallback.models == ("medium",)  # tie with large goes to lower latency
    assert "none labelled positive" in fallback.reason


def test_labelled_threshold_is_strict() -> None:
    """A confidence exactly at the threshold is not a positive label."""
    result = labelled_max_conf({"small": 0.5, "medium": 0.2, "large": 0.1}, LATENCY)
    assert result.models == ("small",)
    assert "none labelled positive" in result.reason


def test_weighted_max_conf_weights_are_confidences() -> None:
    """WEIGHTEDMAXCONF selects like LABELLEDMAXCONF and weighs each model by its confidence."""
    result = weighted_max_conf({"small": 0.8, "medium": 0.3, "large": 0.6}, LATENCY)
    assert result.models == ("small", "large")
    assert result.weights == {"small": 0.8, "large": 0.6}


def test_max_models_caps_selection() -> None:
    """max_models keeps only the best-ranked positives."""
    conf = {"small": 0.8, "medium": 0.9, "large": 0.7}
    assert labelled_max_conf(conf, LATENCY, max_models=1).models == ("medium",)
