"""``ThoughtBudget``: a worker that runs every generate request of another worker with k
continuous thoughts, so strategies that know nothing of thoughts (greedy, self-consistency,
search) run a continuous-thought model unchanged.

Requests that already ask for thoughts keep their own k. Everything else (scoring,
decoding tokens, guidance, closing) goes to the wrapped worker as it is.

Example:
    >>> worker = ThoughtBudget(TransformersWorker.load("runs/latent/codi"), 6)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from workers.base import (
    GenerateRequest,
    GenerateResult,
    ScoreRequest,
    ScoreResult,
    StepVerifier,
    StreamItem,
    Worker,
)
from workers.guidance_stats import GuidanceStats

__all__ = ["ThoughtBudget"]


class ThoughtBudget(Worker):
    """``worker`` with ``thoughts`` continuous thoughts on every request that sets none."""

    def __init__(self, worker: Worker, thoughts: int) -> None:
        if thoughts < 0:
            raise ValueError(f"thoughts must be >= 0, got {thoughts}")
        self.worker, self.thoughts = worker, thoughts
        self.model_name = worker.model_name

    def _with_thoughts(self, request: GenerateRequest) -> GenerateRequest:
        if request.params.continuous_thoughts or not self.thoughts:
            return request
        params = request.params.model_copy(update={"continuous_thoughts": self.thoughts})
        return request.model_copy(update={"params": params})

    async def generate(self, request: GenerateRequest) -> GenerateResult:
        return await self.worker.generate(self._with_thoughts(request))

    async def generate_stream(self, request: GenerateRequest) -> AsyncIterator[StreamItem]:
        async for item in self.worker.generate_stream(self._with_thoughts(request)):
            yield item

    @property
    def streams_tokens(self) -> bool:
        return self.worker.streams_tokens

    async def score(self, request: ScoreRequest) -> ScoreResult:
        return await self.worker.score(request)

    @property
    def supports_guidance(self) -> bool:
        return self.worker.supports_guidance

    @property
    def guidance_stats(self) -> GuidanceStats | None:
        return self.worker.guidance_stats

    def token_step_verifier(self) -> StepVerifier:
        return self.worker.token_step_verifier()

    async def decode_tokens(self, token_ids: Sequence[int]) -> str:
        return await self.worker.decode_tokens(token_ids)

    async def close(self) -> None:
        await self.worker.close()
