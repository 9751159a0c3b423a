"""Label statistics: counts, failures apart, mean cost over the usable pairs only."""

from __future__ import annotations

import math

from policies.selectllm.labels import label_stats


def test_label_stats_count_per_model_and_average_usable_pairs() -> None:
    """Each model's pairs, right answers and failures are counted; means skip failures."""
    records = [
        {"model": "a", "label": 1, "seconds": 1.0, "completion_tokens": 10},
        {"model": "a", "label": 0, "seconds": 3.0, "completion_tokens": 30},
        {"model": "a", "label": None, "seconds": 9.0, "completion_tokens": 0},
        {"model": "b", "label": 1, "seconds": 5.0, "completion_tokens": 50},
    ]
    stats = label_stats(records, ["a", "b"])
    a, b = stats["a"], stats["b"]
    assert (a.pairs, a.positives, a.failed, a.labelled) == (3, 1, 1, 2)
    assert (a.mean_seconds, a.mean_completion_tokens) == (2.0, 20.0)
    assert (b.pairs, b.positives, b.failed, b.mean_seconds) == (1, 1, 0, 5.0)


def test_label_stats_of_a_model_without_usable_pairs_are_nan() -> None:
    """A model whose pairs all failed, or that has none, gets NaN means, not zero."""
    records = [{"model": "a", "label": None, "seconds": 9.0, "completion_tokens": 0}]
    stats = label_stats(records, ["a", "absent"])
    assert (stats["a"].pairs, stats["a"].failed, stats["a"].labelled) == (1, 1, 0)
    assert math.isnan(stats["a"].mean_seconds)
    assert math.isnan(stats["a"].mean_completion_tokens)
    assert stats["absent"].pairs == 0
    assert math.isnan(stats["absent"].mean_seconds)
