"""Arms: (model, strategy) pairs a compute-aware router chooses between, and their labels
computed from collected samples.

An arm is a name, a pool model and a strategy: ``greedy``, or ``self_consistency`` with
``n = k`` samples (SC@k). One collection per (item, model) (``system2 router collect``,
format 2: a greedy answer and ``samples`` ordered sampled answers with their tokens, see
``policies.selectllm.labels``) labels every arm of that model at once:

* greedy: the greedy answer, its tokens and seconds;
* SC@k: the majority vote over the *first k* collected samples, ties going to the tied
  answer that came first, or with ``tie_break: mean_logprob`` to the answer whose samples
  have the highest mean per-token log-prob (the live ``self_consistency`` vote's rules,
  from the samples' recorded log-probs); tokens are those
  k samples'; seconds are the sampling call's seconds prorated by tokens (the k samples
  ran in one batched call with the others, so their own seconds were never measured).

Correctness comes from the record's ``judged`` table (answer -> right, every answer the
collector saw, judged when it was collected), so no item needs scoring again. An arm must
match what was collected: an SC arm's temperature, top_p and max_tokens, a greedy arm's
max_tokens, and k <= the samples collected; anything else is an error naming the field.

Example:
    >>> arm = ArmConfig(name="q-sc3", model="q", strategy={"kind": "self_consistency", "n": 3})
    >>> record = {"item": "i", "model": "q", "question": "?", "status": "ok", "seconds": 2.0,
    ...           "samples": [{"answer": "4", "tokens": 10}, {"answer": "5", "tokens": 10},
    ...                       {"answer": "5", "tokens": 20}, {"answer": "4", "tokens": 10}],
    ...           "judged": {"4": True, "5": False}, "greedy": None}
    >>> outcome = arm_outcome(record, arm)
    >>> outcome.answer, outcome.correct, outcome.tokens, outcome.seconds
    ('5', False, 40, 1.6)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from orchestrator.aggregation.voting import break_tie, majority_vote
from orchestrator.strategies.config import GreedyConfig, SelfConsistencyConfig

__all__ = [
    "ArmConfig",
    "ArmLabelError",
    "ArmOutcome",
    "ArmStrategy",
    "CollectionSettings",
    "arm_label_records",
    "arm_outcome",
    "arm_outcomes",
    "check_arms",
    "collection_settings",
]

ArmStrategy = Annotated[GreedyConfig | SelfConsistencyConfig, Field(discriminator="kind")]


class ArmLabelError(ValueError):
    """Collected records that cannot label an arm (old format, too few samples, other
    sampling settings); the message names the arm and the field."""


class ArmConfig(BaseModel):
    """One arm: ``name`` (the router's column), the pool ``model`` and its ``strategy``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    model: str = Field(min_length=1)
    strategy: ArmStrategy

    @field_validator("strategy")
    @classmethod
    def _plain_vote(cls, strategy: GreedyConfig | SelfConsistencyConfig) -> Any:
        if isinstance(strategy, SelfConsistencyConfig):
            unsupported = [
                name
                for name, on in (
                    ("vote", strategy.vote != "majority"),
                    ("early_stop", strategy.early_stop is not None),
                    ("exact_stop", strategy.exact_stop),
                )
                if on
            ]
            if unsupported:
                raise ValueError(
                    f"an arm's self_consistency is a plain majority over n samples; "
                    f"{', '.join(unsupported)} cannot be labelled from collected samples"
                )
        return strategy

    @property
    def samples(self) -> int:
        """Samples the arm votes over (0 for greedy)."""
        return self.strategy.n if isinstance(self.strategy, SelfConsistencyConfig) else 0


def check_arms(arms: Sequence[ArmConfig]) -> None:
    """At least one arm, names distinct, no two arms the same (model, strategy)."""
    if not arms:
        raise ValueError("no arms declared")
    names = [a.name for a in arms]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"arm names must be distinct; repeated: {repeated}")
    seen: dict[tuple[str, str], str] = {}
    for arm in arms:
        key = (arm.model, arm.strategy.model_dump_json())
        if key in seen:
            raise ValueError(f"arms {seen[key]!r} and {arm.name!r} are the same model and strategy")
        seen[key] = arm.name


@dataclass(frozen=True)
class CollectionSettings:
    """What one collection per (item, model) must sample to label the arms."""

    samples: int
    greedy: bool
    temperature: float
    top_p: float
    top_k: int
    max_tokens: int


def collection_settings(arms: Sequence[ArmConfig]) -> CollectionSettings:
    """The largest k, whether any arm is greedy, and the sampling settings the arms share
    (they must: one collection serves them all); a disagreement names both arms."""
    check_arms(arms)
    sampled = [a for a in arms if isinstance(a.strategy, SelfConsistencyConfig)]
    if not sampled:
        raise ValueError("no self_consistency arm: nothing says how to sample")
    first = sampled[0]
    shared = first.strategy
    assert isinstance(shared, SelfConsistencyConfig)
    for arm in arms[1:]:
        fields = ("max_tokens",) if arm not in sampled else _SAMPLING
        for field in fields:
            mine, theirs = getattr(arm.strategy, field), getattr(first.strategy, field)
            if mine != theirs:
                raise ValueError(
                    f"arm {arm.name!r} has strategy.{field} {mine}, arm {first.name!r} "
                    f"{theirs}: arms labelled from one collection share their sampling"
                )
    return CollectionSettings(
        samples=max(a.samples for a in sampled),
        greedy=any(isinstance(a.strategy, GreedyConfig) for a in arms),
        temperature=shared.temperature,
        top_p=shared.top_p,
        top_k=shared.top_k,
        max_tokens=shared.max_tokens,
    )


_SAMPLING = ("temperature", "top_p", "top_k", "max_tokens")


@dataclass(frozen=True)
class ArmOutcome:
    """One arm on one item: its answer, whether it is right, its cost, and (SC arms) its
    vote margin."""

    answer: str | None
    correct: bool
    tokens: int
    seconds: float
    margin: float | None = None


def check_collected(arm: ArmConfig, header: Mapping[str, Any]) -> None:
    """Refuse an arm the collection (``header`` of a labels file) cannot label."""
    where = f"arm {arm.name!r}"
    if header.get("format", 1) < 2:
        raise ArmLabelError(
            f"{where}: the labels file is format 1 (per-model majority votes only, no ordered "
            "samples or greedy answers); collect format-2 labels with `system2 router collect "
            "--greedy` (or `python -m benchmarks.routing`)"
        )
    collected = SelfConsistencyConfig.model_validate(header["strategy"])
    if isinstance(arm.strategy, GreedyConfig):
        greedy = header.get("greedy")
        if not greedy:
            raise ArmLabelError(f"{where}: no greedy answers collected (collect with --greedy)")
        if arm.strategy.max_tokens != greedy["max_tokens"]:
            raise ArmLabelError(
                f"{where}: strategy.max_tokens is {arm.strategy.max_tokens}, the greedy "
                f"answers were collected with max_tokens {greedy['max_tokens']}"
            )
        return
    if arm.strategy.n > collected.n:
        raise ArmLabelError(
            f"{where}: strategy.n is {arm.strategy.n}, only {collected.n} samples per item "
            "were collected"
        )
    for field in _SAMPLING:
        mine, theirs = getattr(arm.strategy, field), getattr(collected, field)
        if mine != theirs:
            raise ArmLabelError(
                f"{where}: strategy.{field} is {mine}, the samples were collected with "
                f"{field} {theirs}"
            )


def arm_outcome(record: Mapping[str, Any], arm: ArmConfig) -> ArmOutcome | None:
    """The arm's outcome on one (item, model) record of format 2; None when the record
    failed or lacks what the arm needs (its greedy call failed, fewer than k samples)."""
    if record["status"] == "failed":
        return None
    judged: Mapping[str, bool] = record["judged"]
    if isinstance(arm.strategy, GreedyConfig):
        greedy = record.get("greedy")
        if not greedy or greedy["status"] == "failed":
            return None
        answer = greedy["answer"]
        right = answer is not None and bool(judged.get(answer, False))
        return ArmOutcome(answer, right, int(greedy["tokens"]), float(greedy["seconds"]))
    samples: Sequence[Mapping[str, Any]] = record["samples"]
    k = arm.strategy.n
    if len(samples) < k:
        return None
    first = samples[:k]
    vote = majority_vote([s["answer"] for s in first])
    if arm.strategy.tie_break == "mean_logprob":
        vote = break_tie(vote, _mean_logprobs(first))
    winner = vote.winner
    tokens = sum(int(s["tokens"]) for s in first)
    total = sum(int(s["tokens"]) for s in samples)
    seconds = float(record["seconds"]) * (tokens / total if total else k / len(samples))
    right = winner is not None and bool(judged.get(winner, False))
    return ArmOutcome(winner, right, tokens, seconds, vote.margin)


def _mean_logprobs(samples: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Per answer, the mean of its samples' mean per-token log-prob (the live vote's
    ``mean_logprobs``; a sample without tokens counts -inf)."""
    per_answer: dict[str, list[float]] = {}
    for s in samples:
        if s["answer"] is not None:
            tokens = int(s["tokens"])
            mean = float(s["logprob"]) / tokens if tokens > 0 else -math.inf
            per_answer.setdefault(s["answer"], []).append(mean)
    return {a: sum(v) / len(v) for a, v in per_answer.items()}


def arm_outcomes(
    header: Mapping[str, Any], records: Sequence[Mapping[str, Any]], arms: Sequence[ArmConfig]
) -> dict[str, dict[str, ArmOutcome]]:
    """Per item id, per arm name, the arm's outcome; items where an arm has none (a failed
    call) are left out, so every item kept has every arm."""
    check_arms(arms)
    for arm in arms:
        check_collected(arm, header)
    models = set(header.get("models", ()))
    missing = sorted({a.model for a in arms} - models)
    if missing:
        raise ArmLabelError(
            f"arms name model(s) {missing} that were not collected ({sorted(models)})"
        )
    by_item: dict[str, dict[str, Mapping[str, Any]]] = {}
    for r in records:
        by_item.setdefault(r["item"], {})[r["model"]] = r
    outcomes: dict[str, dict[str, ArmOutcome]] = {}
    for item, per_model in by_item.items():
        row = {}
        for arm in arms:
            record = per_model.get(arm.model)
            outcome = None if record is None else arm_outcome(record, arm)
            if outcome is None:
                break
            row[arm.name] = outcome
        else:
            outcomes[item] = row
    return outcomes


def arm_label_records(
    header: Mapping[str, Any], records: Sequence[Mapping[str, Any]], arms: Sequence[ArmConfig]
) -> list[dict[str, Any]]:
    """Label records (``policies.selectllm.labels``) with one column per arm (``model`` is
    the arm's name), for ``train_router``: the router then scores arms as it scores models."""
    questions = {r["item"]: r["question"] for r in records}
    return [
        {
            "item": item,
            "model": name,
            "question": questions[item],
            "label": int(outcome.correct),
            "seconds": outcome.seconds,
            "completion_tokens": outcome.tokens,
        }
        for item, row in arm_outcomes(header, records, arms).items()
        for name, outcome in row.items()
    ]
