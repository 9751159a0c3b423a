"""How many of a run's votes were ties, and which rule broke them.

Each item record keeps its trace, and the trace its final vote. A vote recorded since ties
were reported carries ``tie`` and ``tie_break`` (the deciding rule: ``first``,
``plan_order``, ``mean_logprob``); an older one is judged a tie from its counts (the top
two equal), its rule counted as ``unrecorded`` (it was ``first`` or ``plan_order``).

Example:
    >>> broken_by_first = {"tie": True, "tie_break": "first"}
    >>> records = [
    ...     {"trace": {"vote": {"counts": {"5": 2.0, "6": 2.0}, **broken_by_first}}},
    ...     {"trace": {"vote": {"counts": {"5": 1.0, "6": 1.0}}}},
    ...     {"trace": {"vote": {"counts": {"5": 3.0}, "tie": False, "tie_break": None}}},
    ...     {"trace": None},
    ... ]
    >>> ties = count_ties(records)
    >>> ties.votes, ties.ties, ties.by_rule, ties.describe()
    (3, 2, {'first': 1, 'unrecorded': 1}, '2/3 (first 1, unrecorded 1)')
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["UNRECORDED", "VoteTies", "count_ties", "is_tie"]

UNRECORDED = "unrecorded"
"""The rule of a tie in a vote recorded before the rule was."""


@dataclass(frozen=True)
class VoteTies:
    """``votes``: items whose trace has a vote; ``ties``: those that tied at the top;
    ``by_rule``: ties per deciding rule."""

    votes: int = 0
    ties: int = 0
    by_rule: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        """E.g. ``19/30 (first 19)``; ``-`` when no item voted."""
        if not self.votes:
            return "-"
        rules = ", ".join(f"{rule} {count}" for rule, count in self.by_rule.items())
        return f"{self.ties}/{self.votes}" + (f" ({rules})" if rules else "")


def is_tie(vote: Mapping[str, Any]) -> tuple[bool, str | None]:
    """Whether a trace's vote (as stored) tied, and the rule that broke it."""
    if "tie" in vote:
        tied = bool(vote["tie"])
        return tied, (vote.get("tie_break") or UNRECORDED) if tied else None
    counts = sorted((float(c) for c in vote.get("counts", {}).values()), reverse=True)
    tied = len(counts) > 1 and counts[0] > 0 and counts[0] == counts[1]
    return tied, UNRECORDED if tied else None


def count_ties(records: Iterable[Mapping[str, Any]]) -> VoteTies:
    """Count the votes and ties over item records (as ``run_eval`` writes them)."""
    votes = ties = 0
    by_rule: dict[str, int] = {}
    for record in records:
        vote = (record.get("trace") or {}).get("vote")
        if not vote:
            continue
        votes += 1
        tied, rule = is_tie(vote)
        if tied and rule is not None:
            ties += 1
            by_rule[rule] = by_rule.get(rule, 0) + 1
    return VoteTies(votes=votes, ties=ties, by_rule=dict(sorted(by_rule.items())))
