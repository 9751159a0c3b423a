"""SelectLLM's training labels: the record format and per-model statistics over it.

One label record says whether one model's majority answer to one item was right. The
collector (``system2.pipelines.router_labels``) writes them to a run file; training
(``policies.selectllm.train``) and replay (``policies.selectllm.replay``) read them as
plain mappings with these keys: ``item``, ``model``, ``question``, ``task``, ``status`` (the
answer's: ``ok``, ``no_answer``, or ``failed`` when the call or the scoring raised),
``label`` (1 if the majority answer is right, 0 if not, including no parsable answer; None
when failed), ``answer`` (the majority answer), ``margin`` (vote margin), ``votes`` (answer
-> count), ``seconds`` (the model's time for the pair's samples as measured at the worker
seam, i.e. ``Usage.worker_seconds``; wall time when the call raised) and
``completion_tokens``.

Format 2 (header ``format: 2``) adds what arms are labelled from
(``policies.selectllm.arms``): ``samples`` (the sampled answers in the order drawn, each
``{"answer", "tokens", "logprob"}``), ``judged`` (every answer seen, sampled or greedy ->
right or not) and ``greedy`` (``{"status", "answer", "tokens", "seconds"}``, or None when
no greedy answer was collected; the header's ``greedy`` then is None too). A pair whose
greedy call failed is recorded as failed.

Example:
    >>> records = [
    ...     {"model": "a", "label": 1, "seconds": 1.0, "completion_tokens": 10},
    ...     {"model": "a", "label": None, "seconds": 9.0, "completion_tokens": 0},
    ... ]
    >>> label_stats(records, ["a"])["a"].labelled
    1
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["LabelStats", "Pair", "label_stats"]

Pair = tuple[str, str]
"""(item id, model name): the key of a label record."""


@dataclass(frozen=True)
class LabelStats:
    """One model's labels: pairs recorded, right (label 1), failed, and mean cost per item
    over the pairs that did not fail."""

    pairs: int
    positives: int
    failed: int
    mean_seconds: float
    mean_completion_tokens: float

    @property
    def labelled(self) -> int:
        return self.pairs - self.failed


def label_stats(
    records: Sequence[Mapping[str, Any]], models: Sequence[str]
) -> dict[str, LabelStats]:
    """Per-model counts and mean latency / tokens (NaN for a model with no usable pair)."""
    stats = {}
    for model in models:
        mine = [r for r in records if r["model"] == model]
        usable = [r for r in mine if r["label"] is not None]
        n = len(usable)
        stats[model] = LabelStats(
            pairs=len(mine),
            positives=sum(int(r["label"]) for r in usable),
            failed=len(mine) - n,
            mean_seconds=sum(float(r["seconds"]) for r in usable) / n if n else float("nan"),
            mean_completion_tokens=(
                sum(int(r["completion_tokens"]) for r in usable) / n if n else float("nan")
            ),
        )
    return stats
