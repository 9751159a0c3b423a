"""The call recorder: the one writer of a query's trace, and the cost of a block of calls."""

from __future__ import annotations

import pytest

from orchestrator.errors import UnknownWorkerError
from orchestrator.recorder import CallRecorder
from orchestrator.types import Candidate, Trace, Usage
from workers.base import ChatMessage, GenerateRequest, Guidance, SamplingParams
from workers.errors import WorkerFailure
from workers.scripted import ScriptedWorker, cycle_texts

PROMPT = (ChatMessage(role="user", content="2 + 2?"),)


def _request(n: int = 1) -> GenerateRequest:
    return GenerateRequest(prompt=PROMPT, params=SamplingParams(n=n, max_tokens=16))


def _recorder() -> tuple[CallRecorder, Trace, Usage]:
    trace, usage = Trace(query_id="q"), Usage()
    worker = ScriptedWorker("m", cycle_texts(["The answer is 4."]))
    return CallRecorder({"m": worker}, usage, trace), trace, usage


async def test_cost_since_counts_only_the_calls_after_the_mark() -> None:
    """A mark taken between calls prices the later calls alone: their count and tokens."""
    calls, trace, usage = _recorder()
    await calls.generate("m", _request())
    mark = calls.mark()
    assert calls.cost_since(mark).calls == 0
    await calls.generate("m", _request(n=2))
    await calls.generate("m", _request(n=3))
    cost = calls.cost_since(mark)
    later = trace.generations[1:]
    assert cost.calls == 2
    assert cost.completion_tokens == sum(r.completion_tokens for r in later) > 0
    assert cost.prompt_tokens == sum(r.prompt_tokens for r in later)
    assert cost.seconds == pytest.approx(sum(r.seconds for r in later))
    assert cost.wall_seconds >= 0.0
    assert usage.completion_tokens > cost.completion_tokens  # the first call is not in it


async def test_failed_calls_count_in_the_cost() -> None:
    """A call that fails is recorded, so a block's cost still counts it."""
    worker = ScriptedWorker("m", cycle_texts(["x"]))  # no verifier: guided requests fail
    calls = CallRecorder({"m": worker}, Usage(), Trace(query_id="q"))
    mark = calls.mark()
    guided = GenerateRequest(prompt=PROMPT, params=SamplingParams(guidance=Guidance(beta=1.0)))
    with pytest.raises(WorkerFailure):
        await calls.generate("m", guided)
    assert calls.cost_since(mark).calls == 1


def test_recorded_candidates_land_in_the_trace() -> None:
    """Candidates handed to the recorder are kept in the trace, in order."""
    calls, trace, _ = _recorder()
    made = [
        Candidate(model="m", text=t, answer=t, completion_tokens=1, total_logprob=-1.0,
                  finish_reason="stop")
        for t in ("4", "5")
    ]  # fmt: skip
    calls.record_candidates(made)
    assert trace.candidates == made


def test_an_unknown_model_lists_the_configured_ones() -> None:
    """Asking for a model with no worker names the ones there are."""
    calls, _, _ = _recorder()
    with pytest.raises(UnknownWorkerError, match="configured: m"):
        calls.worker("other")
