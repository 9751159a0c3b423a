"""Arm labels from collected samples: SC@k votes the first k samples, greedy arms read the
greedy answer, costs are the arm's own, and a collection that cannot label an arm is
refused with the field named."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from policies.selectllm.arms import (
    ArmConfig,
    ArmLabelError,
    arm_label_records,
    arm_outcome,
    arm_outcomes,
    collection_settings,
)

HEADER: dict[str, Any] = {
    "format": 2,
    "models": ["m"],
    "strategy": {"kind": "self_consistency", "n": 5, "temperature": 0.7, "max_tokens": 64},
    "greedy": {"kind": "greedy", "max_tokens": 64},
}


def arm(name: str, kind: str = "self_consistency", **strategy: Any) -> ArmConfig:
    fields = {"kind": kind, "max_tokens": 64, **strategy}
    if kind == "self_consistency":
        fields.setdefault("temperature", 0.7)
    return ArmConfig(name=name, model="m", strategy=fields)


def record(
    item: str, answers: list[str | None], *, greedy: str | None = "4", **extra: Any
) -> dict[str, Any]:
    """A format-2 record: 10 tokens per sample, 5 s for the sampling call; "4" is right."""
    return {
        "item": item,
        "model": "m",
        "question": f"question {item}",
        "status": "ok",
        "seconds": 5.0,
        "samples": [{"answer": a, "tokens": 10} for a in answers],
        "judged": {a: a == "4" for a in [*answers, greedy] if a is not None},
        "greedy": {"status": "ok", "answer": greedy, "tokens": 7, "seconds": 0.5},
        **extra,
    }


def test_sc_k_votes_the_first_k_samples() -> None:
    """SC@3 sees only "5, 4, 5" (wrong); SC@5 sees two more 4s and is right."""
    r = record("q", ["5", "4", "5", "4", "4"])
    three = arm_outcome(r, arm("sc3", n=3))
    five = arm_outcome(r, arm("sc5", n=5))
    assert three is not None
    assert five is not None
    assert (three.answer, three.correct) == ("5", False)
    assert (five.answer, five.correct) == ("4", True)
    assert three.margin == pytest.approx(1 / 3)


def test_sc_ties_go_to_the_answer_drawn_first() -> None:
    """A 1-1 tie over the first two samples goes to the first sample's answer."""
    r = record("q", ["4", "5", "5", "5", "5"])
    outcome = arm_outcome(r, arm("sc2", n=2))
    assert outcome is not None
    assert outcome.answer == "4"
    assert outcome.margin == 0.0


def test_costs_are_the_arms_own() -> None:
    """SC@k pays its k samples' tokens and their token share of the call's seconds; the
    greedy arm pays the greedy call."""
    r = record("q", ["4", "4", "4", "4", "4"])
    r["samples"][0]["tokens"] = 30  # 30 + 10 of 70 tokens
    two = arm_outcome(r, arm("sc2", n=2))
    greedy = arm_outcome(r, arm("g", kind="greedy"))
    assert two is not None
    assert (two.tokens, two.seconds) == (40, pytest.approx(5.0 * 40 / 70))
    assert greedy is not None
    assert (greedy.tokens, greedy.seconds, greedy.correct) == (7, 0.5, True)


def test_no_answer_is_wrong_and_failed_pairs_have_no_outcome() -> None:
    """Samples with nothing extracted abstain (no answer: wrong); a failed pair or greedy
    call gives no outcome, and ``arm_outcomes`` drops that item for every arm."""
    empty = arm_outcome(record("q", [None, None, None]), arm("sc3", n=3))
    assert empty is not None
    assert empty.answer is None
    assert not empty.correct
    failed_greedy = record("b", ["4"] * 5)
    failed_greedy["greedy"]["status"] = "failed"
    records = [
        record("a", ["4"] * 5),
        failed_greedy,
        {**record("c", ["4"] * 5), "status": "failed"},
    ]
    outcomes = arm_outcomes(HEADER, records, [arm("g", kind="greedy"), arm("sc5", n=5)])
    assert sorted(outcomes) == ["a"]
    assert sorted(outcomes["a"]) == ["g", "sc5"]


def test_arm_label_records_have_one_column_per_arm() -> None:
    """Each arm becomes a router column: ``model`` is the arm's name, with its label and cost."""
    rows = arm_label_records(
        HEADER, [record("a", ["5", "4", "5", "4", "4"])], [arm("g", kind="greedy"), arm("sc3", n=3)]
    )
    by_arm = {r["model"]: r for r in rows}
    assert by_arm["g"]["label"] == 1
    assert by_arm["sc3"]["label"] == 0
    assert by_arm["sc3"]["completion_tokens"] == 30
    assert by_arm["g"]["question"] == "question a"


@pytest.mark.parametrize(
    ("header", "bad", "message"),
    [
        ({**HEADER, "format": 1}, arm("sc5", n=5), "format 1"),
        (HEADER, arm("sc8", n=8), r"strategy.n is 8, only 5 samples"),
        (HEADER, arm("hot", n=3, temperature=1.0), r"strategy.temperature is 1.0"),
        (HEADER, arm("long", n=3, max_tokens=128), r"strategy.max_tokens is 128"),
        ({**HEADER, "greedy": None}, arm("g", kind="greedy"), "no greedy answers"),
    ],
)
def test_a_collection_that_cannot_label_an_arm_is_refused(
    header: dict[str, Any], bad: ArmConfig, message: str
) -> None:
    """Old files, too few samples, other sampling settings, no greedy run: each named."""
    with pytest.raises(ArmLabelError, match=message):
        arm_outcomes(header, [record("a", ["4"] * 5)], [bad])


def test_arm_config_refuses_what_samples_cannot_label() -> None:
    """A verifier-weighted or early-stopped SC arm is refused, naming the setting."""
    with pytest.raises(ValidationError, match="early_stop"):
        arm("x", n=5, early_stop={"min_margin": 0.5})
    with pytest.raises(
        ValidationError, match=r"strategy\n.*'sample'.*'greedy', 'self_consistency'"
    ):
        ArmConfig(name="x", model="m", strategy={"kind": "sample"})


def test_collection_settings_cover_every_arm() -> None:
    """The largest k, greedy when any arm is, and shared sampling; a clash names both arms."""
    settings = collection_settings([arm("g", kind="greedy"), arm("sc3", n=3), arm("sc5", n=5)])
    assert (settings.samples, settings.greedy, settings.max_tokens) == (5, True, 64)
    with pytest.raises(ValueError, match=r"arm 'hot' has strategy.temperature 1.0, arm 'sc3'"):
        collection_settings([arm("sc3", n=3), arm("hot", n=5, temperature=1.0)])
    with pytest.raises(ValueError, match="repeated"):
        collection_settings([arm("a", n=3), arm("a", n=5)])


def test_mean_logprob_tie_break_picks_the_surer_answer() -> None:
    """An SC arm with ``tie_break: mean_logprob`` breaks a 1-1 tie by the samples' mean
    per-token log-prob; the default arm keeps the first answer."""
    r = record("q", ["5", "4", "4"])
    r["samples"][0]["logprob"] = -20.0  # 10 tokens: -2.0 per token
    r["samples"][1]["logprob"] = -5.0  # -0.5 per token
    r["samples"][2]["logprob"] = -5.0
    surer = arm_outcome(r, arm("sure", n=2, tie_break="mean_logprob"))
    first = arm_outcome(r, arm("first", n=2))
    assert surer is not None
    assert first is not None
    assert (surer.answer, surer.correct) == ("4", True)
    assert (first.answer, first.correct) == ("5", False)
