"""TransformersWorker's async front (batching, scoring, failures) on a tiny random model."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import pytest
import torch

from tests.workers.tiny_model import EOS, CharTokenizer, tiny_model
from workers.base import (
    ChatMessage,
    GenerateRequest,
    GenerateResult,
    SamplingParams,
    ScoreRequest,
    TokenChunk,
)
from workers.errors import WorkerFailure
from workers.streaming import closing
from workers.transformers_worker import TransformersWorker


@pytest.fixture
async def worker():  # type: ignore[no-untyped-def]
    w = TransformersWorker(tiny_model(), CharTokenizer(), model_name="tiny")
    yield w
    await w.close()


async def test_generate_returns_n_completions_with_usage(worker: TransformersWorker) -> None:
    """n samples come back with token ids, log-probs and usage counting every token."""
    params = SamplingParams(n=3, temperature=1.0, max_tokens=5, seed=1)
    result = await worker.generate(GenerateRequest(prompt="abc", params=params))
    assert result.model == "tiny"
    assert len(result.completions) == 3
    for c in result.completions:
        assert len(c.token_ids) == len(c.logprobs) <= 5
        assert all(lp <= 0 for lp in c.logprobs)
    assert result.usage.completion_tokens == sum(len(c.token_ids) for c in result.completions)
    assert result.usage.prompt_tokens == 3 * 3


async def test_concurrent_calls_match_sequential_calls(worker: TransformersWorker) -> None:
    """Calls batched together give the same seeded outputs as the same calls made one by one."""
    requests = [
        GenerateRequest(prompt=p, params=SamplingParams(n=2, temperature=0.8, max_tokens=6, seed=i))
        for i, p in enumerate(["abc", "hello", "x y z"])
    ]
    sequential = [await worker.generate(r) for r in requests]
    concurrent = await asyncio.gather(*(worker.generate(r) for r in requests))
    for a, b in zip(sequential, concurrent, strict=True):
        assert [c.token_ids for c in a.completions] == [c.token_ids for c in b.completions]


async def test_score_matches_full_forward(worker: TransformersWorker) -> None:
    """score() gives the same per-token log-probs as one forward pass per continuation."""
    tok = worker.tokenizer
    result = await worker.score(ScoreRequest(prompt="abc", continuations=("de", "xyz q", "a")))
    for cont, scored in zip(("de", "xyz q", "a"), result.scores, strict=True):
        ids = tok.encode("abc") + tok.encode(cont)
        with torch.no_grad():
            logprobs = torch.log_softmax(worker.model(input_ids=torch.tensor([ids])).logits[0], -1)
        expected = [float(logprobs[2 + i, t]) for i, t in enumerate(tok.encode(cont))]
        assert scored.token_logprobs == pytest.approx(expected, abs=1e-4)


async def test_chat_prompt_without_template_uses_plain_layout(worker: TransformersWorker) -> None:
    """A model without a chat template reads a plain 'Role: content' rendering."""
    text = worker.render_prompt((ChatMessage(role="user", content="hi there"),))
    assert text == "User: hi there\n\nAssistant:"


async def test_model_error_reaches_every_caller_as_worker_failure() -> None:
    """An exception inside the model thread fails each batched call with the model named."""

    class Broken(torch.nn.Module):
        config = tiny_model().config

        def forward(self, **kwargs: object) -> None:
            raise RuntimeError("out of memory")

    worker = TransformersWorker(Broken(), CharTokenizer(), model_name="broken")
    requests = [GenerateRequest(prompt="abc"), GenerateRequest(prompt="def")]
    outcomes = await asyncio.gather(*(worker.generate(r) for r in requests), return_exceptions=True)
    await worker.close()
    for outcome in outcomes:
        assert isinstance(outcome, WorkerFailure)
        assert "broken" in str(outcome)
        assert "out of memory" in str(outcome)


async def test_cancelled_call_does_not_break_the_worker(worker: TransformersWorker) -> None:
    """A caller cancelled while queued is skipped and later calls are still served."""
    slow = asyncio.ensure_future(
        worker.generate(GenerateRequest(prompt="abc", params=SamplingParams(max_tokens=30)))
    )
    queued = asyncio.ensure_future(worker.generate(GenerateRequest(prompt="def")))
    await asyncio.sleep(0)
    queued.cancel()
    await slow
    later = worker.generate(GenerateRequest(prompt="xyz", params=SamplingParams(max_tokens=3)))
    result = await asyncio.wait_for(later, timeout=60)  # a dead model thread would hang here
    assert len(result.completions) == 1
    assert queued.cancelled()


async def test_score_chunks_rows_without_changing_results(
    worker: TransformersWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A logit budget small enough to score one row per pass gives the same log-probs (the
    prompt's cache is copied per chunk, never consumed)."""
    conts = ("de", "xyz q", "a", "hello world")
    whole = await worker.score(ScoreRequest(prompt="abc", continuations=conts))
    monkeypatch.setattr("workers.scoring._LOGIT_BUDGET", 1)
    chunked = await worker.score(ScoreRequest(prompt="abc", continuations=conts))
    for a, b in zip(whole.scores, chunked.scores, strict=True):
        assert a.token_logprobs == pytest.approx(b.token_logprobs, abs=1e-5)


async def test_usage_counts_only_the_tokens_of_the_returned_text() -> None:
    """A completion cut at a stop string is charged the tokens of its returned text, not
    the stop string's (the model is made to write "hello world." here)."""
    tokenizer = CharTokenizer()
    prompt, target = tokenizer.encode("abc"), tokenizer.encode("hello world.")

    def write_target(sequences: Sequence[Sequence[int]], logits: torch.Tensor) -> torch.Tensor:
        out = torch.full_like(logits, float("-inf"))
        for row, sequence in enumerate(sequences):
            out[row, target[min(len(sequence) - len(prompt), len(target) - 1)]] = 0.0
        return out

    worker = TransformersWorker(
        tiny_model(), tokenizer, model_name="tiny", logits_processor=write_target
    )
    params = SamplingParams(n=2, max_tokens=20, stop=(" wo",))
    result = await worker.generate(GenerateRequest(prompt="abc", params=params))
    await worker.close()
    for completion in result.completions:
        assert (completion.text, completion.finish_reason) == ("hello", "stop")
        assert completion.token_ids == tuple(tokenizer.encode("hello"))
        assert len(completion.logprobs) == 5
    assert result.usage.completion_tokens == 2 * len(tokenizer.encode("hello"))


def _no_eos(sequences: Sequence[Sequence[int]], logits: torch.Tensor) -> torch.Tensor:
    logits[:, EOS] = -torch.inf  # rows run to max_tokens
    return logits


async def test_stream_sends_each_token_and_ends_with_generates_result(
    worker: TransformersWorker,
) -> None:
    """Greedy and seeded samples (n=2, a stop string): chunks come as the tokens are made
    (their ids and log-probs), each sample's texts join to its completion's, and the last
    item is the result ``generate`` gives."""
    for params in (
        SamplingParams(max_tokens=12),
        SamplingParams(n=2, temperature=1.0, seed=3, max_tokens=12, stop=(" ",)),
    ):
        request = GenerateRequest(prompt="abc", params=params)
        items = [item async for item in worker.generate_stream(request)]
        result = items[-1]
        assert isinstance(result, GenerateResult)
        plain = await worker.generate(request)
        assert [c.token_ids for c in result.completions] == [c.token_ids for c in plain.completions]
        assert result.usage.completion_tokens == plain.usage.completion_tokens
        chunks = [i for i in items if isinstance(i, TokenChunk)]
        for index, completion in enumerate(result.completions):
            mine = [c for c in chunks if c.index == index]
            assert "".join(c.text for c in mine) == completion.text
            streamed = tuple(t for c in mine for t in c.token_ids)
            assert streamed[: len(completion.token_ids)] == completion.token_ids
            assert [len(c.logprobs) for c in mine] == [len(c.token_ids) for c in mine]
    assert worker.streams_tokens


async def test_closing_a_stream_ends_its_rows_and_the_batch_goes_on() -> None:
    """A stream closed after three chunks stops decoding at its next token; a call batched
    with it decodes to the end as before."""
    rows_per_step: list[int] = []

    def slow_no_eos(sequences: Sequence[Sequence[int]], logits: torch.Tensor) -> torch.Tensor:
        rows_per_step.append(len(sequences))
        time.sleep(0.01)
        return _no_eos(sequences, logits)

    worker = TransformersWorker(
        tiny_model(), CharTokenizer(), model_name="tiny", logits_processor=slow_no_eos
    )
    try:
        long = SamplingParams(max_tokens=60)
        other = asyncio.create_task(worker.generate(GenerateRequest(prompt="xyz", params=long)))
        seen = 0
        async with closing(worker.generate_stream(GenerateRequest(prompt="abc", params=long))) as s:
            async for _ in s:
                seen += 1
                if seen == 3:
                    break
        result = await other
        assert len(result.completions[0].token_ids) == 60
        assert rows_per_step.count(2) < 30  # the streamed row left early
        assert rows_per_step[-1] == 1
    finally:
        await worker.close()


async def test_a_streamed_call_ends_when_its_rows_do_not_when_its_batch_does() -> None:
    """A short streamed call batched with a long one gets its result as soon as its own
    rows finish (an exact early stop counts on this); it equals ``generate``'s."""

    def slow_no_eos(sequences: Sequence[Sequence[int]], logits: torch.Tensor) -> torch.Tensor:
        time.sleep(0.01)
        return _no_eos(sequences, logits)

    worker = TransformersWorker(
        tiny_model(), CharTokenizer(), model_name="tiny", logits_processor=slow_no_eos
    )
    try:
        other = asyncio.create_task(
            worker.generate(GenerateRequest(prompt="xyz", params=SamplingParams(max_tokens=80)))
        )
        short = GenerateRequest(prompt="abc", params=SamplingParams(max_tokens=4))
        items = [item async for item in worker.generate_stream(short)]
        assert not other.done()
        result = items[-1]
        assert isinstance(result, GenerateResult)
        await other
        (alone,) = (await worker.generate(short)).completions
        (mine,) = result.completions
        assert (alone.text, alone.token_ids) == (mine.text, mine.token_ids)
        assert len(mine.token_ids) == 4
        assert alone.logprobs == pytest.approx(mine.logprobs, abs=1e-5)
    finally:
        await worker.close()
