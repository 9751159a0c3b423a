"""OpenAIWorker's scoring (``/tokenize`` + token-id prompts with ``prompt_logprobs``),
``decode_tokens`` and stop-string trimming against ``FakeOpenAIServer``."""

from __future__ import annotations

import doctest
from typing import Any

import httpx
import pytest

import workers.stops
from tests.workers.openai.fake_server import FakeOpenAIServer, completion_choice, completions_body
from workers.base import (
    ChatMessage,
    GenerateRequest,
    SamplingParams,
    ScoreRequest,
    TokenAlternative,
)
from workers.errors import UnsupportedRequest, WorkerFailure
from workers.stops import tokens_before_stop

BOS, CHAT_START, CHAT_END = 1, 2, 3
CHAT = (ChatMessage(role="user", content="hi"),)


def tokenize(body: Any) -> Any:
    """One token per character (its code point); BOS with special tokens; chat messages
    rendered as <start> content <end>."""
    if "messages" in body:
        assert body["add_generation_prompt"] is True
        tokens = [CHAT_START, *(ord(c) for m in body["messages"] for c in m["content"]), CHAT_END]
    else:
        tokens = [BOS] * body["add_special_tokens"] + [ord(c) for c in body["prompt"]]
    return {"count": len(tokens), "max_model_len": 1024, "tokens": tokens}


def position(token: int, at: int) -> dict[str, Any]:
    """The prompt log-probs of one position: the prompt's token (rank 3, log-prob -at) and
    the two most probable tokens there, 900 and 901."""
    return {
        str(token): {"logprob": -float(at), "rank": 3, "decoded_token": chr(token)},
        "901": {"logprob": -0.5, "rank": 2, "decoded_token": "b"},
        "900": {"logprob": -0.25, "rank": 1, "decoded_token": "a"},
    }


def prompt_logprobs(body: Any) -> Any:
    choices = [
        {
            "index": i,
            "text": "!",
            "finish_reason": "length",
            "prompt_logprobs": [None, *(position(t, at) for at, t in enumerate(ids) if at)],
        }
        for i, ids in enumerate(body["prompt"])
    ]
    return completions_body(*choices, prompt_tokens=sum(map(len, body["prompt"])))


@pytest.fixture
def scoring(server: FakeOpenAIServer) -> FakeOpenAIServer:
    server.routes["/tokenize"] = tokenize
    server.routes["/v1/completions"] = prompt_logprobs
    return server


async def test_score_tokenizes_prompt_and_continuations_apart(scoring: FakeOpenAIServer) -> None:
    """The prompt (with special tokens) and each continuation (without) are tokenized by the
    server apart, sent as token-id prompts, and each continuation's positions are read."""
    request = ScoreRequest(prompt="Q:", continuations=(" ab", "c"))
    async with scoring.worker() as worker:
        result = await worker.score(request)
    assert scoring.bodies("/tokenize") == [
        {"model": "served-name", "prompt": "Q:", "add_special_tokens": True},
        {"model": "served-name", "prompt": " ab", "add_special_tokens": False},
        {"model": "served-name", "prompt": "c", "add_special_tokens": False},
    ]
    (body,) = scoring.bodies("/v1/completions")
    prompt = [BOS, ord("Q"), ord(":")]
    assert body == {
        "model": "served-name",
        "prompt": [[*prompt, ord(" "), ord("a"), ord("b")], [*prompt, ord("c")]],
        "max_tokens": 1,
        "temperature": 0.0,
        "prompt_logprobs": 0,
    }
    spaced, single = result.scores
    assert spaced.token_ids == (ord(" "), ord("a"), ord("b"))
    assert spaced.token_logprobs == (-3.0, -4.0, -5.0)
    assert (single.token_ids, single.token_logprobs) == ((ord("c"),), (-3.0,))
    assert spaced.top_alternatives == ()
    assert result.usage.prompt_tokens == 10


async def test_score_top_logprobs_and_chat_prompts(scoring: FakeOpenAIServer) -> None:
    """``top_logprobs = k`` asks for k prompt log-probs and keeps the ranks 1..k, most
    probable first; a chat prompt is tokenized by the server from its messages."""
    request = ScoreRequest(prompt=CHAT, continuations=("ok",), top_logprobs=2)
    async with scoring.worker() as worker:
        (score,) = (await worker.score(request)).scores
    assert scoring.bodies("/tokenize")[0] == {
        "model": "served-name",
        "messages": [{"role": "user", "content": "hi"}],
        "add_generation_prompt": True,
    }
    assert scoring.bodies("/v1/completions")[0]["prompt"][0][:4] == [CHAT_START, 104, 105, 3]
    assert scoring.bodies("/v1/completions")[0]["prompt_logprobs"] == 2
    best = (
        TokenAlternative(token_id=900, logprob=-0.25),
        TokenAlternative(token_id=901, logprob=-0.5),
    )
    assert score.top_alternatives == (best, best)
    assert score.token_logprobs == (-4.0, -5.0)


def _dropping(key: str) -> Any:
    def handler(body: Any) -> Any:
        data = prompt_logprobs(body)
        del data["choices"][0]["prompt_logprobs"][-1][key]
        return data

    return handler


@pytest.mark.parametrize(
    ("handler", "pattern"),
    [
        (_dropping(str(ord("b"))), r"missing field choices\[0\]\.prompt_logprobs\[4\]\.98"),
        (_dropping("900"), None),  # a missing alternative only matters when asked for
        (
            lambda body: {**prompt_logprobs(body), "choices": [{"index": 0}]},
            r"missing field choices\[0\]\.prompt_logprobs in",
        ),
        (
            lambda body: completions_body(
                {"index": 0, "prompt_logprobs": [None, None]}, prompt_tokens=1
            ),
            r"prompt_logprobs has 2 positions for 5 tokens",
        ),
    ],
)
async def test_score_names_a_broken_response(
    scoring: FakeOpenAIServer, handler: Any, pattern: str | None
) -> None:
    """A missing prompt log-prob (or a count that does not match the tokens) is a
    WorkerFailure naming the field."""
    scoring.routes["/v1/completions"] = handler
    async with scoring.worker() as worker:
        request = ScoreRequest(prompt="Q:", continuations=("ab",))
        if pattern is None:
            await worker.score(request)
            return
        with pytest.raises(WorkerFailure, match=pattern):
            await worker.score(request)


async def test_score_refuses_a_prompt_of_no_tokens(scoring: FakeOpenAIServer) -> None:
    """Nothing to condition on: refused before any completion request."""
    scoring.routes["/tokenize"] = lambda body: {"tokens": [], "count": 0}
    async with scoring.worker() as worker:
        with pytest.raises(UnsupportedRequest, match="no tokens"):
            await worker.score(ScoreRequest(prompt="", continuations=("a",)))
    assert scoring.bodies("/v1/completions") == []


async def test_decode_tokens_asks_detokenize(server: FakeOpenAIServer) -> None:
    """decode_tokens posts the ids to /detokenize and returns its text."""
    server.routes["/detokenize"] = lambda body: {"prompt": "".join(map(chr, body["tokens"]))}
    async with server.worker() as worker:
        assert await worker.decode_tokens([104, 105]) == "hi"
    assert server.bodies("/detokenize") == [{"model": "served-name", "tokens": [104, 105]}]


async def test_stop_string_tokens_are_cut_with_their_usage(server: FakeOpenAIServer) -> None:
    """The server cuts the text at the stop string but returns its tokens: they are dropped
    (ids and log-probs) and taken off completion_tokens; the token the text ends inside is
    kept; a completion that ended on EOS or length is left whole."""

    def choice(index: int, pieces: list[str], text: str, finish: str = "stop") -> Any:
        return completion_choice(
            index,
            text,
            [-0.5] * len(pieces),
            token_ids=list(range(10, 10 + len(pieces))),
            pieces=pieces,
            finish_reason=finish,
        )

    server.routes["/v1/completions"] = lambda body: completions_body(
        choice(0, ["A", " b", "\n\n", "Step"], "A b"),  # the stop is a token of its own
        choice(1, ["A", " b.\n", "\n"], "A b."),  # the text ends inside " b.\n"
        choice(2, ["A", "<eos>"], "A"),  # EOS: no stop string in its text
        choice(3, ["\n\n"], ""),
        prompt_tokens=4,
        completion_tokens=10,
    )
    params = SamplingParams(n=4, max_tokens=8, stop=("\n\n", "Step"))
    async with server.worker() as worker:
        result = await worker.generate(GenerateRequest(prompt="Q", params=params))
    assert [c.token_ids for c in result.completions] == [(10, 11), (10, 11), (10, 11), ()]
    assert [len(c.logprobs) for c in result.completions] == [2, 2, 2, 0]
    assert result.usage.completion_tokens == 6


async def test_chat_stop_string_tokens_are_cut(server: FakeOpenAIServer) -> None:
    """Chat completions are cut the same way, from ``logprobs.content[].token``."""
    content = [{"token": t, "logprob": -0.1} for t in ("Yes", ".", "\n\n", "More")]
    server.routes["/v1/chat/completions"] = lambda body: {
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Yes."},
                "logprobs": {"content": content},
                "finish_reason": "stop",
                "token_ids": [5, 6, 7, 8],
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4},
    }
    params = SamplingParams(stop=("\n\n",))
    async with server.worker() as worker:
        result = await worker.generate(GenerateRequest(prompt=CHAT, params=params))
    assert result.completions[0].token_ids == (5, 6)
    assert result.completions[0].logprobs == (-0.1, -0.1)
    assert result.usage.completion_tokens == 2


async def test_token_pieces_that_disagree_with_the_ids_are_a_failure(
    server: FakeOpenAIServer,
) -> None:
    """Token texts that are not one per log-prob cannot say what to cut: a named failure."""
    server.routes["/v1/completions"] = lambda body: completions_body(
        completion_choice(0, "A", [-0.5, -0.5], pieces=["A"])
    )
    async with server.worker() as worker:
        with pytest.raises(WorkerFailure, match=r"logprobs\.tokens is not one string per"):
            await worker.generate(GenerateRequest(prompt="Q", params=SamplingParams(stop=("x",))))


def test_tokens_before_stop() -> None:
    """The earliest-ending stop string decides; tokens starting at or after it go."""
    assert tokens_before_stop(["a", "b", "cd", "e"], ["de", "c"]) == 2
    assert tokens_before_stop(["ab", "c"], ["bc"]) == 1  # the stop starts inside "ab"
    assert tokens_before_stop(["ab", "c"], ["", "x"]) is None
    assert tokens_before_stop([], ["a"]) is None
    assert doctest.testmod(workers.stops).failed == 0


async def test_transport_errors_on_tokenize_are_named(server: FakeOpenAIServer) -> None:
    """A server without /tokenize (not vLLM) fails scoring with the URL named."""
    async with server.worker() as worker:
        with pytest.raises(WorkerFailure, match=r"HTTP 404 from POST http://fake:8000/tokenize"):
            await worker.score(ScoreRequest(prompt="Q", continuations=("a",)))
    server.routes["/tokenize"] = lambda body: httpx.Response(200, json={"count": 1})
    async with server.worker() as worker:
        with pytest.raises(WorkerFailure, match=r"missing field tokens in the response"):
            await worker.score(ScoreRequest(prompt="Q", continuations=("a",)))
