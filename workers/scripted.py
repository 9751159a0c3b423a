"""``ScriptedWorker``: a test double for logic tests, in the spirit of httpx's MockTransport.

It runs no model. A handler function decides each completion's text; tokens are the
text's whitespace-separated words (one token each) with a fixed log-prob per token. It is
never a default anywhere: configs must name it (``kind: scripted``) to get one.

``token_delay_s`` makes each token take that long (awaited, so it can be cancelled): a call
takes ``token_delay_s`` times its longest sample's tokens, and ``generate_stream`` yields the
samples word by word, one word of each running sample every ``token_delay_s``. A subclass that
rewrites ``generate`` (a test double with failures or gates) streams through it instead:
the seam's default stream, each whole text once.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence

from workers.base import (
    Completion,
    ContinuationScore,
    GenerateRequest,
    GenerateResult,
    ScoreRequest,
    ScoreResult,
    StreamItem,
    TokenChunk,
    Worker,
    WorkerUsage,
)
from workers.errors import UnsupportedRequest

__all__ = ["GenerateHandler", "ScriptedWorker", "cycle_texts"]

GenerateHandler = Callable[[GenerateRequest, int], str]
"""(request, sample index) -> completion text."""

_TOKEN_LOGPROB = -0.5


def cycle_texts(texts: Sequence[str]) -> GenerateHandler:
    """A handler that returns ``texts`` in order across all calls, cycling."""
    if not texts:
        raise ValueError("cycle_texts needs at least one text")
    calls = iter(range(1 << 62))

    def handler(request: GenerateRequest, index: int) -> str:
        return texts[next(calls) % len(texts)]

    return handler


class ScriptedWorker(Worker):
    """A worker whose outputs are scripted by ``handler``; for tests and dry runs only.

    Example:
        >>> worker = ScriptedWorker("scripted", cycle_texts(["The answer is 4."]))
    """

    def __init__(
        self,
        model_name: str,
        handler: GenerateHandler,
        *,
        seconds_per_call: float = 0.0,
        guidance: bool = False,
        token_delay_s: float = 0.0,
    ) -> None:
        self.model_name = model_name
        self.handler = handler
        self.seconds_per_call = seconds_per_call
        self.guidance = guidance
        self.token_delay_s = token_delay_s
        self.requests: list[GenerateRequest | ScoreRequest] = []

    @property
    def supports_guidance(self) -> bool:
        """As set by ``guidance=``: a scripted worker accepts guided requests (and, running
        no model, answers them as it answers any other) only when told to."""
        return self.guidance

    @property
    def streams_tokens(self) -> bool:
        return type(self).generate is ScriptedWorker.generate

    async def generate(self, request: GenerateRequest) -> GenerateResult:
        started = time.perf_counter()
        completions = self._complete(request)
        if self.token_delay_s:
            await asyncio.sleep(self.token_delay_s * max(len(c.token_ids) for c in completions))
        return self._result(request, completions, started)

    async def generate_stream(self, request: GenerateRequest) -> AsyncIterator[StreamItem]:
        if not self.streams_tokens:  # a rewritten generate: stream what it returns
            async for item in super().generate_stream(request):
                yield item
            return
        started = time.perf_counter()
        completions = self._complete(request)
        pieces = [_word_pieces(c.text) for c in completions]
        for step in range(max(map(len, pieces))):
            if self.token_delay_s:
                await asyncio.sleep(self.token_delay_s)
            for index, words in enumerate(pieces):
                if step < len(words):
                    token = (step,) if step < len(completions[index].token_ids) else ()
                    yield TokenChunk(
                        index=index,
                        text=words[step],
                        token_ids=token,
                        logprobs=(_TOKEN_LOGPROB,) * len(token),
                    )
        yield self._result(request, completions, started)

    def _complete(self, request: GenerateRequest) -> tuple[Completion, ...]:
        if request.params.guidance is not None and not self.guidance:
            raise UnsupportedRequest(self.model_name, "no verifier: guidance is not supported")
        self.requests.append(request)
        completions = []
        for index in range(request.params.n):
            text = self.handler(request, index)
            words = text.split()[: request.params.max_tokens]
            truncated = len(text.split()) > request.params.max_tokens
            completions.append(
                Completion(
                    text=" ".join(words) if truncated else text,
                    token_ids=tuple(range(len(words))),
                    logprobs=(_TOKEN_LOGPROB,) * len(words),
                    finish_reason="length" if truncated else "stop",
                )
            )
        return tuple(completions)

    def _result(
        self, request: GenerateRequest, completions: tuple[Completion, ...], started: float
    ) -> GenerateResult:
        usage = WorkerUsage(
            prompt_tokens=len(str(request.prompt).split()) * request.params.n,
            completion_tokens=sum(len(c.token_ids) for c in completions),
            seconds=self.seconds_per_call or time.perf_counter() - started,
        )
        return GenerateResult(model=self.model_name, completions=completions, usage=usage)

    async def score(self, request: ScoreRequest) -> ScoreResult:
        self.requests.append(request)
        scores = tuple(
            ContinuationScore(
                token_ids=tuple(range(len(c.split()))),
                token_logprobs=(_TOKEN_LOGPROB,) * len(c.split()),
            )
            for c in request.continuations
        )
        return ScoreResult(model=self.model_name, scores=scores, usage=WorkerUsage())


def _word_pieces(text: str) -> list[str]:
    """``text`` cut after each word (a piece per token; the last keeps any trailing
    whitespace), so the pieces join to ``text``; a text without words is one piece."""
    ends = [m.end() for m in re.finditer(r"\S+", text)]
    if not ends:
        return [text] if text else []
    pieces = [text[start:end] for start, end in zip([0, *ends[:-1]], ends, strict=True)]
    pieces[-1] += text[ends[-1] :]
    return pieces
