"""The ``cascade`` strategy: self-consistency model by model, cheapest first, escalating
while the vote (and, when asked, the step verifier) is not decisive."""

from __future__ import annotations

from typing import Any

from orchestrator import Orchestrator
from orchestrator.recorder import STEP_VERIFIER
from orchestrator.strategies.config import CascadeConfig, SelfConsistencyConfig
from policies.constant import CascadePolicy
from tests.orchestrator.strategies.test_step_verifier_use import ScriptedStepVerifier
from workers.base import Worker
from workers.scripted import ScriptedWorker, cycle_texts

THREE_SAMPLES = SelfConsistencyConfig(n=3)


def _cascade(
    texts: dict[str, list[str]],
    min_margin: float,
    *,
    stage: SelfConsistencyConfig = THREE_SAMPLES,
    min_verifier_score: float | None = None,
    step_verifier: object | None = None,
) -> Orchestrator:
    workers: dict[str, Worker] = {m: ScriptedWorker(m, cycle_texts(t)) for m, t in texts.items()}
    strategy = CascadeConfig(
        stage=stage, min_margin=min_margin, min_verifier_score=min_verifier_score
    )
    return Orchestrator(
        workers,
        CascadePolicy(tuple(texts), strategy),
        step_verifier=step_verifier,  # type: ignore[arg-type]
    )


def _verified_cascade(
    texts: dict[str, list[str]], min_verifier_score: float, **stage: Any
) -> tuple[Orchestrator, ScriptedStepVerifier]:
    """A cascade whose stages must also pass the scripted step verifier (path score: min)."""
    verifier = ScriptedStepVerifier()
    orch = _cascade(
        texts,
        0.6,
        stage=SelfConsistencyConfig(n=3, **stage),
        min_verifier_score=min_verifier_score,
        step_verifier=verifier,
    )
    return orch, verifier


async def test_cascade_stops_at_the_first_decisive_model() -> None:
    """A unanimous cheap model answers alone; the expensive one is never called."""
    orch = _cascade({"small": ["The answer is 4."], "large": ["The answer is 5."]}, 0.6)
    answer = await orch.answer("q")
    assert answer.answer == "4"
    assert set(answer.usage.per_model) == {"small"}
    assert answer.trace.extra["cascade"] == [{"model": "small", "answer": "4", "margin": 1.0}]


async def test_cascade_escalates_on_a_split_vote() -> None:
    """A split vote on the cheap model escalates; the stronger model's answer is returned."""
    small = ["The answer is 1.", "The answer is 2.", "The answer is 3."]
    orch = _cascade({"small": small, "large": ["The answer is 9."]}, 0.6)
    answer = await orch.answer("q")
    assert answer.answer == "9"
    assert [s["model"] for s in answer.trace.extra["cascade"]] == ["small", "large"]
    assert len(answer.trace.candidates) == 6


async def test_cascade_escalates_a_unanimous_vote_the_verifier_rejects() -> None:
    """The scripted verifier scores steps without "Add one" 0.2: the cheap model's unanimous
    answer is escalated at min_verifier_score 0.5, and the stronger model's returned."""
    small = ["Let x be 3.\nThen 2x is 6.\nThe answer is 6."]
    large = ["Add one to 2x: 7.\nAdd one more step: the answer is 7."]
    orch, _ = _verified_cascade({"small": small, "large": large}, 0.5)
    answer = await orch.answer("q")
    assert answer.answer == "7"
    stages = answer.trace.extra["cascade"]
    assert [(s["model"], s["verifier_score"]) for s in stages] == [("small", 0.2), ("large", 0.9)]


async def test_cascade_stops_when_the_verifier_agrees() -> None:
    """Every step of the cheap model's path scores 0.9 >= 0.5: it answers alone."""
    small = ["Add one to 2x: 7.\nAdd one more step: the answer is 7."]
    orch, _ = _verified_cascade({"small": small, "large": ["The answer is 6."]}, 0.5)
    answer = await orch.answer("q")
    assert answer.answer == "7"
    assert set(answer.usage.per_model) == {"small", STEP_VERIFIER}


async def test_cascade_reuses_the_path_scores_of_a_verifier_vote() -> None:
    """A stage that voted with the verifier has scored every path: the chosen one's score is
    read from the vote (3 scored paths, not 4), and it still decides the escalation."""
    small = ["Let x be 3.\nThen 2x is 6.\nThe answer is 6."]
    texts = {"small": small, "large": ["The answer is 6."]}
    orch, verifier = _verified_cascade(texts, 0.1, vote="verifier")
    answer = await orch.answer("q")
    assert answer.trace.extra["cascade"] == [
        {"model": "small", "answer": "6", "margin": 1.0, "verifier_score": 0.2}
    ]
    assert len(verifier.calls) == 3
