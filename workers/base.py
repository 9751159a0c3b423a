"""The worker seam: the one async interface every model backend implements.

A backend answers two questions about one model:

* ``generate(request)``: sample ``n`` continuations of a prompt (or chat), each with its
  token ids, the model's log-probability of every sampled token, and why it stopped;
* ``score(request)``: log P(continuation | prompt) for many continuations at once;
* ``generate_stream(request)``: ``generate``, with the text of each sample as the engine
  makes it (``TokenChunk``s), ending with the very ``GenerateResult`` ``generate`` returns
  (usage counted the same way). Every backend has it: the default yields each sample's
  whole text once, after ``generate``; backends that stream say so (``streams_tokens``).
  Closing the stream early (``aclose()``, or cancelling the task iterating it) cancels
  the call: its engine work stops.

What only some backends can do is asked through the seam too (``supports_guidance``,
``guidance_stats``, ``decode_tokens``, ``token_step_verifier``); a backend that lacks it
says so (None, False, or ``UnsupportedRequest`` with how to get it), so no caller needs to
know which backend it holds.

Balancing, retries and fail-over live above this seam (in pools), never inside a backend.
Usage (tokens, seconds) is measured here so every strategy is charged the same way.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Sequence
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from workers.errors import UnsupportedRequest
from workers.guidance_stats import GuidanceStats

__all__ = [
    "ChatMessage",
    "Completion",
    "ContinuationScore",
    "FinishReason",
    "GenerateRequest",
    "GenerateResult",
    "Guidance",
    "Prompt",
    "SamplingParams",
    "ScoreRequest",
    "ScoreResult",
    "StepScale",
    "StepVerifier",
    "StreamItem",
    "TokenAlternative",
    "TokenChunk",
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


class Guidance(_Frozen):
    """System-2 (LLM2) verifier guidance of one request's decoding, arXiv 2412.20372.

    Each step the candidates are V_t = {v : p(v) >= ``alpha`` * max p}, capped at the
    ``top_k`` most probable (0: no cap); their logits become z + ``beta`` * s(x_<t, v) and
    every other token is masked; then greedy or sampling proceeds as usual. ``beta = 0``
    changes nothing. Defaults: the paper's alpha 0.1 and beta 0.25; the cap of 10 is ours.
    """

    beta: float = Field(default=0.25, ge=0.0)
    alpha: float = Field(default=0.1, ge=0.0, le=1.0)
    top_k: int = Field(default=10, ge=0)

    @model_validator(mode="after")
    def _bounded(self) -> Guidance:
        if self.alpha == 0.0 and self.top_k == 0:
            raise ValueError("alpha = 0 needs a top_k cap (otherwise V_t is the whole vocabulary)")
        return self


class SamplingParams(_Frozen):
    """How to sample. ``temperature == 0`` means greedy (and ignores top-p/top-k/seed).

    ``guidance`` asks the worker to steer this request with its token verifier (None:
    plain decoding, exactly as without a verifier); a worker without one refuses it.
    Temperature, top-p and top-k then apply to the guided logits.
    """

    n: int = Field(default=1, ge=1)
    temperature: float = Field(default=0.0, ge=0.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    top_k: int = Field(default=0, ge=0, description="0 disables top-k filtering")
    max_tokens: int = Field(default=256, ge=1)
    stop: tuple[str, ...] = ()
    seed: int | None = Field(
        default=None, description="sample i of a request uses seed + i; None draws a fresh seed"
    )
    guidance: Guidance | None = None
    continuous_thoughts: int = Field(
        default=0,
        ge=0,
        description="continuous thoughts (hidden states fed back as input embeddings) run "
        "after the prompt, before the text; 0: plain decoding. Backends without them refuse",
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
    latent_tokens: int = Field(
        default=0,
        ge=0,
        description="how many of the completion tokens were latent (latent-vocabulary ids "
        "and continuous thoughts); text tokens = completion_tokens - latent_tokens",
    )


class GenerateResult(_Frozen):
    model: str
    completions: tuple[Completion, ...]
    usage: WorkerUsage


class TokenChunk(_Frozen):
    """What sample ``index`` of a streamed call made since its previous chunk.

    The ``text`` of a sample's chunks joins to its completion's text (a backend holds back
    text that may start a stop string). ``token_ids``/``logprobs`` are the tokens as the
    engine made them (empty where the backend does not return them); the final
    ``GenerateResult`` is the authority on them: a stop string may trim its last tokens.
    """

    index: int = Field(ge=0)
    text: str
    token_ids: tuple[int, ...] = ()
    logprobs: tuple[float, ...] = ()


StreamItem = TokenChunk | GenerateResult
"""What ``Worker.generate_stream`` yields: chunks, then (last) the call's result."""


class ScoreRequest(_Frozen):
    """Score each continuation as a suffix of the prompt. The prompt and each continuation
    are tokenized separately and concatenated, so token boundaries never straddle them.

    ``top_logprobs = k > 0`` also asks, at every continuation position, for the k most
    probable tokens there (``ContinuationScore.top_alternatives``)."""

    prompt: Prompt
    continuations: tuple[str, ...] = Field(min_length=1)
    request_id: str = ""
    top_logprobs: int = Field(default=0, ge=0)


class TokenAlternative(_Frozen):
    """A token the model could have put at a position, with its log-probability there."""

    token_id: int
    logprob: float


class ContinuationScore(_Frozen):
    """``top_alternatives[i]``: the ``top_logprobs`` most probable tokens at continuation
    position i (given the prompt and ``token_ids[:i]``), most probable first, whether or not
    ``token_ids[i]`` is among them; empty when none were asked for."""

    token_ids: tuple[int, ...]
    token_logprobs: tuple[float, ...]
    top_alternatives: tuple[tuple[TokenAlternative, ...], ...] = ()

    @property
    def total_logprob(self) -> float:
        return float(sum(self.token_logprobs))


class ScoreResult(_Frozen):
    model: str
    scores: tuple[ContinuationScore, ...]
    usage: WorkerUsage


StepScale = Literal["probability", "logit"]
"""What a step score is: P(step correct) in [0, 1], or a real-valued (Bradley-Terry) logit."""


class StepVerifier(Protocol):
    """Scores each step of a reply to ``prompt`` (one float per step, higher is better);
    ``scale`` says what the floats are. Implementations: ``workers.verifier.steps``."""

    @property
    def scale(self) -> StepScale: ...

    async def score_steps(self, prompt: Prompt, steps: Sequence[str]) -> list[float]: ...


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

    async def generate_stream(self, request: GenerateRequest) -> AsyncIterator[StreamItem]:
        """``generate``, streamed: ``TokenChunk``s as the text is made, then the
        ``GenerateResult`` (last). Close the stream to cancel the call.

        This default calls ``generate`` and yields each sample's whole text as one chunk;
        backends that can stream token by token override it (and ``streams_tokens``).
        """
        result = await self.generate(request)
        for index, completion in enumerate(result.completions):
            yield TokenChunk(
                index=index,
                text=completion.text,
                token_ids=completion.token_ids,
                logprobs=completion.logprobs,
            )
        yield result

    @property
    def streams_tokens(self) -> bool:
        """Whether ``generate_stream`` yields text as the engine makes it (False: the
        default stream, each sample's whole text once the call is done)."""
        return False

    @property
    def supports_guidance(self) -> bool:
        """Whether requests with ``SamplingParams.guidance`` can run here (a verifier is
        attached); False unless a backend says otherwise."""
        return False

    @property
    def guidance_stats(self) -> GuidanceStats | None:
        """Running counts and seconds of the attached verifier's guidance work (None
        without a verifier)."""
        return None

    def token_step_verifier(self) -> StepVerifier:
        """The LLM2 token verifier attached to this worker, as a step verifier (each step
        scored by the mean of its tokens' scores).

        Backends without one at hand raise ``UnsupportedRequest``.
        """
        raise UnsupportedRequest(
            self.model_name,
            f"{type(self).__name__} has no token verifier to score steps with; attach one to a "
            "transformers model with `verifier: {path: DIR}` in its config (train one with "
            "`system2 verifier train`)",
        )

    async def decode_tokens(self, token_ids: Sequence[int]) -> str:
        """The text of ``token_ids`` (special tokens dropped), as the model's tokenizer
        decodes them; lets callers without a tokenizer turn alternatives into text.

        Backends without a tokenizer at hand raise ``UnsupportedRequest``.
        """
        raise UnsupportedRequest(
            self.model_name, f"{type(self).__name__} cannot decode token ids (no tokenizer)"
        )

    async def close(self) -> None:  # noqa: B027 - optional hook, most workers hold nothing
        """Release the model and any threads or connections."""

    async def __aenter__(self) -> Worker:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
