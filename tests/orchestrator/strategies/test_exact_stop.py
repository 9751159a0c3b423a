"""The exact early stop of a vote (``exact_stop: true``): it never changes the answer
(a property test over scripted answers, finishing orders, plan weights and rounds), it
cancels the samples that cannot matter, and it counts what that saved."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.prompts import build_prompt
from orchestrator.recorder import CallRecorder
from orchestrator.strategies import STRATEGIES, StrategyContext, StrategyResult
from orchestrator.strategies.config import (
    CascadeConfig,
    EarlyStopConfig,
    SelfConsistencyConfig,
    StrategyConfig,
    VerifierGuidedConfig,
)
from orchestrator.types import Query, Trace, Usage
from workers.base import GenerateRequest
from workers.errors import WorkerFailure
from workers.scripted import ScriptedWorker

SEED = 100
DELAY_S = 0.001


def scripted(
    model: str,
    answers: Sequence[str | None],
    fillers: Sequence[int],
    delay_s: float = DELAY_S,
    **kwargs: object,
) -> ScriptedWorker:
    """Sample i (seed SEED + i) answers ``answers[i]`` (None: nothing to extract) after
    ``fillers[i]`` filler words, one word per ``delay_s``: the fillers set the order the
    samples finish in."""

    def handler(request: GenerateRequest, index: int) -> str:
        assert request.params.seed is not None
        i = request.params.seed - SEED + index
        words = "so " * fillers[i]
        answer = answers[i]
        return f"{words}The answer is {answer}." if answer is not None else f"{words}no idea"

    return ScriptedWorker(model, handler, token_delay_s=delay_s, **kwargs)  # type: ignore[arg-type]


async def run(
    workers: Mapping[str, ScriptedWorker],
    config: StrategyConfig,
    weights: Mapping[str, float] | None = None,
) -> tuple[StrategyResult, Trace, Usage]:
    trace, usage = Trace(query_id="q"), Usage()
    query = Query(text="What is 2 + 2?")
    ctx = StrategyContext(
        query=query,
        models=tuple(workers),
        prompt=build_prompt(query),
        calls=CallRecorder(workers, usage, trace),
        vote_weights=dict(weights or {}),
    )
    return await STRATEGIES[config.kind](ctx, config), trace, usage


ANSWER = st.sampled_from(["1", "2", "3", None])


@st.composite
def votes(draw: st.DrawFn) -> tuple[int, dict[str, tuple[list[str | None], list[int]]]]:
    n = draw(st.integers(1, 8))
    models = draw(st.sampled_from([("a",), ("a", "b")]))
    scripts = {
        m: (
            draw(st.lists(ANSWER, min_size=n, max_size=n)),
            draw(st.lists(st.integers(0, 6), min_size=n, max_size=n)),
        )
        for m in models
    }
    return n, scripts


@settings(max_examples=60, deadline=None)
@given(
    votes(),
    st.none() | st.fixed_dictionaries({"a": st.sampled_from([0.5, 1.0, 2.0])}),
    st.none() | st.integers(1, 4),
)
def test_exact_stop_never_changes_the_answer(
    vote: tuple[int, dict[str, tuple[list[str | None], list[int]]]],
    weights: dict[str, float] | None,
    round_size: int | None,
) -> None:
    """Whatever the answers, the order the samples finish in, the plan's vote weights and
    the rounds: the exact stop answers as drawing every sample does (with rounds, as the
    same rounds without it do), and accounts for every sample."""
    n, scripts = vote
    if weights is not None:
        weights = {**weights, "b": 1.0}
    # A margin rule that never fires: rounds stop only when they cannot be overtaken.
    rounds = None if round_size is None else EarlyStopConfig(round_size=round_size, min_samples=99)
    base = SelfConsistencyConfig(n=n, max_tokens=64, seed=SEED, early_stop=rounds)

    async def both() -> None:
        def workers() -> dict[str, ScriptedWorker]:
            return {m: scripted(m, *script) for m, script in scripts.items()}

        full, _, _ = await run(workers(), base, weights)
        every, _, _ = await run(workers(), base.model_copy(update={"early_stop": None}), weights)
        exact_config = base.model_copy(update={"exact_stop": True})
        exact, trace, usage = await run(workers(), exact_config, weights)
        assert exact.answer == full.answer
        if rounds is None:
            assert full.answer == every.answer
        count = exact.extra["exact_stop"]
        parts = ("samples_finished", "cancelled_in_flight", "not_started")
        assert sum(count[k] for k in parts) == count["samples_planned"] == n * len(scripts)
        assert count["samples_finished"] == len(exact.candidates)
        assert count["generated_tokens"] == usage.completion_tokens
        if not count["decided_early"] and rounds is None:
            assert exact.candidates == full.candidates  # the same vote, in the same order
        assert sum(g.cancelled for g in trace.generations) == count["cancelled_in_flight"]

    asyncio.run(both())


async def test_the_rest_is_cancelled_once_the_leader_cannot_be_overtaken() -> None:
    """Ten samples of "4", each finishing two words after the one before: once six are in
    (the four left cannot overtake; a loaded machine may let one more finish first), the
    rest are cancelled in flight and charged their partial tokens; the trace counts the
    tokens made and estimates those saved; drawing all ten costs more."""
    fillers = [2 * i for i in range(10)]
    config = SelfConsistencyConfig(n=10, seed=SEED, max_tokens=64, exact_stop=True)
    result, trace, usage = await run({"m": scripted("m", ["4"] * 10, fillers, 0.01)}, config)
    everything = config.model_copy(update={"exact_stop": False})
    _, _, full_usage = await run({"m": scripted("m", ["4"] * 10, fillers)}, everything)
    assert result.answer == "4"
    count = result.extra["exact_stop"]
    finished, cancelled = count["samples_finished"], count["cancelled_in_flight"]
    assert finished >= 6
    assert cancelled == 10 - finished >= 1
    assert result.vote is not None
    assert result.vote.stopped_early
    assert result.vote.counts == {"4": float(finished)}
    assert result.extra["early_stop"] == "cannot_be_overtaken"
    assert count["decided_early"]
    finished_tokens = sum(c.completion_tokens for c in result.candidates)
    assert count["cancelled_tokens"] == count["generated_tokens"] - finished_tokens > 0
    assert count["generated_tokens"] == usage.completion_tokens < full_usage.completion_tokens
    assert count["saved_tokens_estimate"] == round(finished_tokens / finished * cancelled)
    assert count["estimate"].startswith("an estimate")
    stopped = [g for g in trace.generations if g.cancelled]
    assert len(stopped) == cancelled
    assert sum(g.completion_tokens for g in stopped) == count["cancelled_tokens"]


async def test_a_failing_sample_fails_the_draw_and_cancels_the_rest() -> None:
    """One sample failing raises its WorkerFailure; the samples still running are
    cancelled."""

    def handler(request: GenerateRequest, index: int) -> str:
        if request.params.seed == SEED + 1:
            raise WorkerFailure("m", "sample 1 broke")
        return "so " * 20 + "The answer is 4."

    worker = ScriptedWorker("m", handler, token_delay_s=DELAY_S)
    config = SelfConsistencyConfig(n=4, seed=SEED, max_tokens=64, exact_stop=True)
    with pytest.raises(WorkerFailure, match="sample 1 broke"):
        await run({"m": worker}, config)


async def test_guided_self_consistency_stops_exactly_too() -> None:
    """The ``system2`` strategy with n > 1 and ``exact_stop``: the same answer, fewer
    samples."""
    fillers = [3 * i for i in range(7)]
    answers: list[str | None] = ["4", "4", "5", "4", "4", "5", "5"]
    config = VerifierGuidedConfig(n=7, temperature=0.7, seed=SEED, max_tokens=64)

    def guided() -> dict[str, ScriptedWorker]:
        return {"m": scripted("m", answers, fillers, guidance=True)}

    full, _, _ = await run(guided(), config)
    exact, _, _ = await run(guided(), config.model_copy(update={"exact_stop": True}))
    assert exact.answer == full.answer == "4"
    assert exact.extra["exact_stop"]["samples_finished"] == 5
    assert exact.extra["guidance"] == full.extra["guidance"]


def test_exact_stop_needs_a_plain_vote_and_no_cascade() -> None:
    """The exact stop counts plain votes as they come: a verifier vote refuses it; in a
    cascade it would change the stage margins escalation reads, so a cascade refuses it."""
    with pytest.raises(ValueError, match="exact_stop needs vote 'majority'"):
        SelfConsistencyConfig(exact_stop=True, vote="verifier")
    with pytest.raises(ValueError, match="exact_stop needs vote 'majority'"):
        VerifierGuidedConfig(n=3, temperature=0.7, exact_stop=True, vote="verifier")
    with pytest.raises(ValueError, match=r"stage\.exact_stop"):
        CascadeConfig(stage=SelfConsistencyConfig(exact_stop=True))
    assert not SelfConsistencyConfig().exact_stop
