"""``ScriptedWorker``: a test double for logic tests, in the spirit of httpx's MockTransport.

It runs no model. A handler function decides each completion's text; tokens are the
text's whitespace-separated words (one token each) with a fixed log-prob per token. It is
never a default anywhere: configs must name it (``kind: scripted``) to get one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from workers.base import (
    Completion,
    ContinuationScore,
    GenerateRequest,
    GenerateResult,
    ScoreRequest,
    ScoreResult,
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
    ) -> None:
        self.model_name = model_name
        self.handler = handler
        self.seconds_per_call = seconds_per_call
        self.guidance = guidance
        self.requests: list[GenerateRequest | ScoreRequest] = []

    @property
    def supports_guidance(self) -> bool:
        """As set by ``guidance=``: a scripted worker accepts guided requests (and, running
        no model, answers them as it answers any other) only when told to."""
        return self.guidance

    async def generate(self, request: GenerateRequest) -> GenerateResult:
        if request.params.guidance is not None and not self.guidance:
            raise UnsupportedRequest(self.model_name, "no verifier: guidance is not supported")
        started = time.perf_counter()
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
        usage = WorkerUsage(
            prompt_tokens=len(str(request.prompt).split()) * request.params.n,
            completion_tokens=sum(len(c.token_ids) for c in completions),
            seconds=self.seconds_per_call or time.perf_counter() - started,
        )
        return GenerateResult(model=self.model_name, completions=tuple(completions), usage=usage)

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
