"""The worker seam: the one async interface every model backend implements.

A backend answers two questions about one model:

* ``generate(request)``: sample ``n`` continuations of a prompt (or chat), each with its
  token ids, the model's log-probability of every sampled token, and why it stopped;
* ``score(request)``: log P(continuation | prompt) for many continuations at once.

Balancing, retries and fail-over live above this seam (in pools), never inside a backend.
Usage (tokens, seconds) is measured here so every strategy is charged the same way.
"""

from __future__ import annotations

import abc
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "ChatMessage",
    "Completion",
    "ContinuationScore",
    "FinishReason",
    "GenerateRequest",
    "GenerateResult",
    "Prompt",
    "SamplingParams",
    "ScoreRequest",
    "ScoreResult",
    "Worker",
    "WorkerUsage",
]

FinishReason = Literal["stop", "length"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ChatMessage(_Frozen):
    """One chat turn; rendered with the model's own chat template."""

    role: Literal["system", "user", "assistant"]
    content: str


Prompt = str | tuple[ChatMessage, ...]
"""A raw text prompt, or chat messages to render with the model's chat template."""


class SamplingParams(_Frozen):
    """How to sample. ``temperature == 0`` means greedy (and ignores top-p/top-k/seed)."""

    n: int = Field(default=1, ge=1)
    temperature: float = Field(default=0.0, ge=0.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    top_k: int = Field(default=0, ge=0, description="0 disables top-k filtering")
    max_tokens: int = Field(default=256, ge=1)
    stop: tuple[str, ...] = ()
    seed: int | None = Field(
        default=None, description="sample i of a request uses seed + i; None draws a fresh seed"
    )

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


class GenerateRequest(_Frozen):
    """``assistant_prefix`` continues a partial reply: the model reads the rendered prompt
    (for chat, up to the assistant turn's start) followed by this text, and the completion
    is what comes after it (step-by-step search builds paths this way)."""

    prompt: Prompt
    params: SamplingParams = SamplingParams()
    request_id: str = ""
    assistant_prefix: str = ""

    @model_validator(mode="after")
    def _non_empty(self) -> GenerateRequest:
        if isinstance(self.prompt, tuple) and not self.prompt:
            raise ValueError("chat prompt has no messages")
        return self


class Completion(_Frozen):
    """One sampled continuation. ``logprobs[i]`` is the model's log P(token_ids[i] | ...)
    under the unmodified distribution (before temperature and filtering)."""

    text: str
    token_ids: tuple[int, ...]
    logprobs: tuple[float, ...]
    finish_reason: FinishReason

    @property
    def total_logprob(self) -> float:
        return float(sum(self.logprobs))


class WorkerUsage(_Frozen):
    """What one call cost: tokens read and written, and its wall seconds at the seam.

    A pool also says which replica answered, how many tries the call took and how many of
    them moved to another replica after a failure; a single worker leaves the defaults.
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    replica: str | None = None
    attempts: int = Field(default=1, ge=1)
    failovers: int = Field(default=0, ge=0)


class GenerateResult(_Frozen):
    model: str
    completions: tuple[Completion, ...]
    usage: WorkerUsage


class ScoreRequest(_Frozen):
    """Score each continuation as a suffix of the prompt. The prompt and each continuation
    are tokenized separately and concatenated, so token boundaries never straddle them."""

    prompt: Prompt
    continuations: tuple[str, ...] = Field(min_length=1)
    request_id: str = ""


class ContinuationScore(_Frozen):
    token_ids: tuple[int, ...]
    token_logprobs: tuple[float, ...]

    @property
    def total_logprob(self) -> float:
        return float(sum(self.token_logprobs))


class ScoreResult(_Frozen):
    model: str
    scores: tuple[ContinuationScore, ...]
    usage: WorkerUsage


class Worker(abc.ABC):
    """A model behind the seam. Implementations must be safe to call concurrently."""

    #: The name this worker's model is known by in configs and traces.
    model_name: str

    @abc.abstractmethod
    async def generate(self, request: GenerateRequest) -> GenerateResult:
        """Sample ``request.params.n`` continuations of ``request.prompt``."""

    @abc.abstractmethod
    async def score(self, request: ScoreRequest) -> ScoreResult:
        """Return log P(continuation | prompt) for every continuation."""

    async def close(self) -> None:  # noqa: B027 - optional hook, most workers hold nothing
        """Release the model and any threads or connections."""

    async def __aenter__(self) -> Worker:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
