"""The call recorder: the one writer of a query's trace, and the cost of a block of calls."""

from __future__ import annotations

import asyncio

import pytest

from orchestrator.budget import BudgetExhausted
from orchestrator.errors import UnknownWorkerError
from orchestrator.events import CallFinished, CallStarted, QueryEvent, TokenDelta
from orchestrator.recorder import CallRecorder
from orchestrator.types import Candidate, Trace, Usage
from workers.base import ChatMessage, GenerateRequest, GenerateResult, Guidance, SamplingParams
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


async def test_stream_generate_sends_token_deltas_between_start_and_finish() -> None:
    """A streamed call: CallStarted, then the text as TokenDeltas (joining to the
    completion), then CallFinished; the trace and usage record it as ``generate`` does."""
    events: list[QueryEvent] = []
    trace, usage = Trace(query_id="q"), Usage()
    worker = ScriptedWorker("m", cycle_texts(["The answer is 4."]))
    calls = CallRecorder({"m": worker}, usage, trace, on_event=events.append)
    assert calls.observed
    result = await calls.stream_generate("m", _request())
    assert isinstance(events[0], CallStarted)
    assert isinstance(events[-1], CallFinished)
    deltas = [e for e in events if isinstance(e, TokenDelta)]
    assert len(deltas) == len(events) - 2 == 4
    assert "".join(d.text for d in deltas) == result.completions[0].text
    assert {(d.call_id, d.model, d.sample) for d in deltas} == {(events[0].call_id, "m", 0)}
    (record,) = trace.generations
    assert (record.completion_tokens, record.cancelled) == (4, False)
    assert usage.completion_tokens == 4
    quiet = CallRecorder({"m": worker}, Usage(), Trace(query_id="q"))
    assert not quiet.observed


async def test_a_cancelled_stream_is_charged_the_tokens_it_streamed() -> None:
    """Cancelled in flight, a streamed call is recorded as cancelled with the completion
    tokens it had made (prompt tokens unknown: 0), in the trace, the usage and its
    CallFinished."""
    events: list[QueryEvent] = []
    three = asyncio.Event()

    def sink(event: QueryEvent) -> None:
        events.append(event)
        if sum(isinstance(e, TokenDelta) for e in events) == 3:
            three.set()

    trace, usage = Trace(query_id="q"), Usage()
    worker = ScriptedWorker("m", cycle_texts(["a b c d e f g h i j"]), token_delay_s=0.02)
    calls = CallRecorder({"m": worker}, usage, trace, on_event=sink)
    task = asyncio.create_task(calls.stream_generate("m", _request()))
    await three.wait()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    (record,) = trace.generations
    assert record.cancelled
    assert 3 <= record.completion_tokens < 10
    assert record.prompt_tokens == 0
    assert usage.completion_tokens == record.completion_tokens
    finished = events[-1]
    assert isinstance(finished, CallFinished)
    assert finished.cancelled
    assert finished.completion_tokens == record.completion_tokens


async def test_stream_generate_keeps_the_budget() -> None:
    """Once the token budget is spent, a streamed call is refused like any other."""
    worker = ScriptedWorker("m", cycle_texts(["The answer is 4."]))
    calls = CallRecorder({"m": worker}, Usage(), Trace(query_id="q"), max_total_tokens=1)
    await calls.stream_generate("m", _request())
    with pytest.raises(BudgetExhausted):
        await calls.stream_generate("m", _request())


async def test_latent_tokens_reach_the_query_usage() -> None:
    """A worker's latent-token count (latent reasoning models) is summed per model."""

    class LatentCounting(ScriptedWorker):
        async def generate(self, request: GenerateRequest) -> GenerateResult:
            result = await super().generate(request)
            usage = result.usage.model_copy(update={"latent_tokens": 3})
            return result.model_copy(update={"usage": usage})

    usage = Usage()
    worker = LatentCounting("m", cycle_texts(["The answer is 4."]))
    calls = CallRecorder({"m": worker}, usage, Trace(query_id="q"))
    await calls.generate("m", _request())
    await calls.generate("m", _request())
    assert usage.per_model["m"].latent_tokens == usage.latent_tokens == 6
    assert usage.completion_tokens > 0
