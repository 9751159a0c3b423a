"""``ModelReplica``: the body of one Ray Serve replica, hosting one system2 backend.

Each replica builds its worker once (``make_worker``: in production one of system2's own
backends from the model's ``replica`` config, so a verifier runs inside the engine exactly
as it does in-process) and serves the seam's calls on it: ``generate``, ``score``,
``generate_stream``, ``decode_tokens``, ``score_steps`` (its token step verifier) and
``capabilities``. Calls arriving close together are let through together
(``batch_window_s``: see ``system2.ray.arrivals``). Every result's usage names the replica
that answered. A worker error
crosses back as ``ReplicaWorkerError`` (the caller turns it into the same ``WorkerFailure``
or ``UnsupportedRequest``); a call cancelled by its caller cancels the worker's call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from ray import serve
from ray.serve.exceptions import RayServeException

from system2.ray.arrivals import ArrivalWindow
from system2.ray.errors import ReplicaWorkerError
from workers.base import (
    GenerateRequest,
    GenerateResult,
    Prompt,
    ScoreRequest,
    ScoreResult,
    StepScale,
    StreamItem,
    Worker,
)
from workers.errors import UnsupportedRequest, WorkerFailure

__all__ = ["DEPLOYMENT_NAME", "ModelReplica", "ReplicaCapabilities"]

DEPLOYMENT_NAME = "ModelReplica"
"""The deployment's name inside each model's Serve application."""

_Result = TypeVar("_Result", GenerateResult, ScoreResult)
_T = TypeVar("_T")


@dataclass(frozen=True)
class ReplicaCapabilities:
    """What the hosted backend can do beyond generate and score (asked once, at attach)."""

    supports_guidance: bool
    streams_tokens: bool
    step_scale: StepScale | None
    """The scale of its token step verifier's scores; None: it has none."""


class ModelReplica:
    """One replica of a model's Serve deployment (see the module's docstring)."""

    def __init__(
        self, model_name: str, make_worker: Callable[[], Worker], batch_window_s: float = 0.0
    ) -> None:
        self._model = model_name
        self._worker = make_worker()
        self._replica = _replica_id()
        self._arrivals = ArrivalWindow(batch_window_s)

    async def generate(self, request: GenerateRequest) -> GenerateResult:
        await self._arrivals.wait()
        return self._named(await _local(self._worker.generate(request)))

    async def score(self, request: ScoreRequest) -> ScoreResult:
        await self._arrivals.wait()
        return self._named(await _local(self._worker.score(request)))

    async def generate_stream(self, request: GenerateRequest) -> AsyncIterator[StreamItem]:
        await self._arrivals.wait()
        stream = self._worker.generate_stream(request)
        try:
            async for item in stream:
                yield self._named(item) if isinstance(item, GenerateResult) else item
        except WorkerFailure as exc:
            raise ReplicaWorkerError.of(exc) from None
        finally:
            await stream.aclose()  # type: ignore[attr-defined]

    async def decode_tokens(self, token_ids: Sequence[int]) -> str:
        return await _local(self._worker.decode_tokens(token_ids))

    async def score_steps(self, prompt: Prompt, steps: Sequence[str]) -> list[float]:
        try:
            verifier = self._worker.token_step_verifier()
        except WorkerFailure as exc:
            raise ReplicaWorkerError.of(exc) from None
        return await _local(verifier.score_steps(prompt, steps))

    def capabilities(self) -> ReplicaCapabilities:
        try:
            scale: StepScale | None = self._worker.token_step_verifier().scale
        except UnsupportedRequest:
            scale = None
        return ReplicaCapabilities(
            supports_guidance=self._worker.supports_guidance,
            streams_tokens=self._worker.streams_tokens,
            step_scale=scale,
        )

    def _named(self, result: _Result) -> _Result:
        usage = result.usage.model_copy(update={"replica": self._replica})
        return result.model_copy(update={"usage": usage})


async def _local(call: Awaitable[_T]) -> _T:
    """``call``'s result; a worker error re-raised in a form that crosses processes."""
    try:
        return await call
    except WorkerFailure as exc:
        raise ReplicaWorkerError.of(exc) from None


def _replica_id() -> str:
    """This replica's id within its deployment (outside Serve, e.g. in a unit test: the
    deployment's name)."""
    try:
        replica: str = serve.get_replica_context().replica_id.unique_id
    except RayServeException:
        return DEPLOYMENT_NAME
    return replica
