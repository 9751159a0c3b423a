"""``RayHandleWorker``: a model's Ray Serve application behind the worker seam.

Every call goes through the application's ``DeploymentHandle`` to one of its
``ModelReplica``s (Serve picks which), one try per call: the builder
(``system2.ray.deploy``) wraps this worker in a ``WorkerPool`` that retries what Ray lost
(a replica that died mid-call) and counts the tries in the usage. The usage's ``replica``
is the Serve replica that answered.

Cancelling a call (its task, or closing a stream early) cancels the handle's response, and
Serve cancels the call inside the replica. What the replica raised comes back as an
in-process worker would raise it (``system2.ray.errors``). A result's usage charges the
wall seconds seen by the caller, the hop to the replica and back included. ``close()`` deletes the
application when this worker deployed it (``owned_app``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from ray import serve

from system2.ray.errors import local_error
from system2.ray.replica import ReplicaCapabilities
from workers.base import (
    GenerateRequest,
    GenerateResult,
    Prompt,
    ScoreRequest,
    ScoreResult,
    StepScale,
    StepVerifier,
    StreamItem,
    Worker,
)
from workers.errors import UnsupportedRequest

__all__ = ["RayHandleWorker", "RemoteStepVerifier"]

_T = TypeVar("_T")
_Result = TypeVar("_Result", GenerateResult, ScoreResult)


class RayHandleWorker(Worker):
    """Calls to ``handle``'s replicas of model ``model_name`` (see the module's docstring).

    ``capabilities`` are the replicas' (``ModelReplica.capabilities``, asked once when the
    application is attached); ``owned_app`` names the application to delete on close.
    """

    def __init__(
        self,
        model_name: str,
        handle: Any,
        capabilities: ReplicaCapabilities,
        *,
        owned_app: str | None = None,
    ) -> None:
        self.model_name = model_name
        self._handle = handle
        self._capabilities = capabilities
        self._owned_app = owned_app
        self._closed = False

    @classmethod
    def attach(
        cls, model_name: str, handle: Any, *, owned_app: str | None = None
    ) -> RayHandleWorker:
        """A worker over ``handle``, asking its replicas' capabilities (blocks until one
        answers, from a helper thread when this one runs an event loop)."""
        capabilities = _blocking(lambda: handle.capabilities.remote().result())
        return cls(model_name, handle, capabilities, owned_app=owned_app)

    # -- the seam -------------------------------------------------------------------------

    async def generate(self, request: GenerateRequest) -> GenerateResult:
        started = time.perf_counter()
        result: GenerateResult = await self._call(self._handle.generate.remote(request))
        return _timed(result, started)

    async def score(self, request: ScoreRequest) -> ScoreResult:
        started = time.perf_counter()
        result: ScoreResult = await self._call(self._handle.score.remote(request))
        return _timed(result, started)

    async def generate_stream(self, request: GenerateRequest) -> AsyncIterator[StreamItem]:
        started = time.perf_counter()
        responses = self._handle.options(stream=True).generate_stream.remote(request)
        finished = False
        try:
            async for item in responses:
                yield _timed(item, started) if isinstance(item, GenerateResult) else item
            finished = True
        except (asyncio.CancelledError, GeneratorExit):
            raise
        except Exception as exc:
            finished = True  # the call is over in the replica
            raise local_error(exc, self.model_name) from None
        finally:
            if not finished:  # closed early or cancelled: stop the replica's work
                responses.cancel()

    @property
    def streams_tokens(self) -> bool:
        return self._capabilities.streams_tokens

    @property
    def supports_guidance(self) -> bool:
        return self._capabilities.supports_guidance

    def token_step_verifier(self) -> StepVerifier:
        """The replicas' token verifier, called through the handle."""
        scale = self._capabilities.step_scale
        if scale is None:
            raise UnsupportedRequest(
                self.model_name,
                "its Ray replicas have no token verifier to score steps with; attach one to "
                "the replica's transformers config with `verifier: {path: DIR}`",
            )
        return RemoteStepVerifier(self, scale)

    async def decode_tokens(self, token_ids: Sequence[int]) -> str:
        text: str = await self._call(self._handle.decode_tokens.remote(list(token_ids)))
        return text

    async def close(self) -> None:
        """Delete the application if this worker deployed it (its replicas stop)."""
        if self._closed:
            return
        self._closed = True
        if self._owned_app is not None:
            await asyncio.to_thread(serve.delete, self._owned_app)

    # -- beyond the seam ------------------------------------------------------------------

    async def score_steps(self, prompt: Prompt, steps: Sequence[str]) -> list[float]:
        """The replicas' token step verifier's scores of ``steps``."""
        scores: list[float] = await self._call(self._handle.score_steps.remote(prompt, list(steps)))
        return scores

    async def _call(self, response: Any) -> Any:
        """``response``'s result; cancelled: the response is cancelled too."""
        try:
            return await response
        except asyncio.CancelledError:
            response.cancel()
            raise
        except Exception as exc:
            raise local_error(exc, self.model_name) from None


def _timed(result: _Result, started: float) -> _Result:
    """``result`` charged the wall seconds seen here (the hop to the replica included)."""
    usage = result.usage.model_copy(update={"seconds": time.perf_counter() - started})
    return result.model_copy(update={"usage": usage})


def _blocking(call: Callable[[], _T]) -> _T:
    """``call()``, run in a helper thread when this thread runs an event loop (Serve
    refuses blocking calls from one; the loop waits either way)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return call()
    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(call).result()


class RemoteStepVerifier:
    """A ``StepVerifier`` whose scores come from a Ray model's replicas."""

    def __init__(self, worker: RayHandleWorker, scale: StepScale) -> None:
        self._worker = worker
        self._scale: StepScale = scale

    @property
    def scale(self) -> StepScale:
        return self._scale

    async def score_steps(self, prompt: Prompt, steps: Sequence[str]) -> list[float]:
        return await self._worker.score_steps(prompt, steps)
