"""The embedded default backend: a transformers causal LM running in this process.

Calls are queued to one model thread (``workers.model_thread``). The thread takes every
job waiting at that moment (after a short batching window), decodes their rows together
(the ``n`` samples of one call and the rows of concurrent calls share one batch), and
resolves each caller's future. torch releases the GIL in its kernels, so the event loop
stays responsive meanwhile.

``generate_stream`` queues the same job with a ``TokenFeed`` (``workers.decode_feeds``): the
decode loop hands it each token as it is chosen, and each row the moment it is done, so a
streamed call ends with its own rows, not with its batch. The stream turns the tokens into
text (``TextDeltas``: held back at a possible stop string). Closing the stream ends its rows
at their next token, and the rest of the batch decodes on.

With a token verifier attached (``verifier=``, or ``load(..., verifier=DIR)``), requests
whose ``SamplingParams.guidance`` is set are decoded with System-2 guidance; the rows of
other requests in the same batch decode exactly as they would without a verifier. Either
kind: an LLM2 ``TokenVerifier`` (a logits hook scoring candidates in its own model) or a
shared-trunk ``TrunkHead`` (a hook reading the generator's own hidden states; the decode
loop then asks the model for them).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import random
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
import torch

from workers.base import (
    Completion,
    ContinuationScore,
    GenerateRequest,
    GenerateResult,
    Prompt,
    ScoreRequest,
    ScoreResult,
    StepVerifier,
    StreamItem,
    TokenAlternative,
    Worker,
    WorkerUsage,
)
from workers.catalog import resolve
from workers.chat_prompt import encode_prompt, render_prompt
from workers.decode_feeds import StreamedRow, completion_of, feed_hooks
from workers.decoding import DecodeRow, LogitsProcessor, decode_batch
from workers.errors import UnsupportedRequest, WorkerFailure
from workers.guidance_stats import GuidanceStats
from workers.latent.serving import LatentModel
from workers.model_thread import ModelThread
from workers.sampling import RowSampling
from workers.scoring import score_with_alternatives
from workers.streaming import FeedChunks, TokenFeed
from workers.verifier.network import TokenVerifier
from workers.verifier.processor import VerifierLogitsProcessor
from workers.verifier.steps import TokenStepVerifier
from workers.verifier.trunk_head import TrunkHead
from workers.verifier.trunk_kinds import load_verifier
from workers.verifier.trunk_scoring import TrunkGuidance, TrunkStepVerifier

__all__ = ["TransformersWorker"]

log = structlog.get_logger(__name__)

_Job = tuple["_GenerateJob | _ScoreJob", concurrent.futures.Future[Any]]


@dataclass
class _GenerateJob:
    request: GenerateRequest
    prompt_ids: tuple[int, ...]
    feed: TokenFeed | None = None  # a streamed call's tokens go here as they are made
    submitted: float = field(default_factory=time.perf_counter)


@dataclass
class _ScoreJob:
    request: ScoreRequest
    prompt_ids: tuple[int, ...]
    continuation_ids: list[list[int]]
    submitted: float = field(default_factory=time.perf_counter)


class TransformersWorker(Worker):
    """An in-process transformers model behind the worker seam.

    Example:
        >>> worker = TransformersWorker.load("smollm2-135m-instruct")  # doctest: +SKIP
        >>> result = await worker.generate(GenerateRequest(prompt="2+2="))  # doctest: +SKIP
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        model_name: str,
        max_batch_rows: int = 32,
        batch_window_s: float = 0.005,
        logits_processor: LogitsProcessor | None = None,
        verifier: TokenVerifier | TrunkHead | None = None,
        latent: LatentModel | None = None,  # latent ids and thought projection, if any
    ) -> None:
        self.model_name = model_name
        self.latent = latent or LatentModel()
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.max_batch_rows = max_batch_rows
        self.logits_processor = logits_processor
        self.verifier = verifier
        llm2 = verifier if isinstance(verifier, TokenVerifier) else None
        self._guidance = VerifierLogitsProcessor(llm2) if llm2 is not None else None
        self._trunk = TrunkGuidance(verifier, model) if isinstance(verifier, TrunkHead) else None
        self.eos_token_ids = _eos_ids(model, tokenizer)
        pad = tokenizer.pad_token_id
        self.pad_token_id = int(pad if pad is not None else min(self.eos_token_ids))
        self._thread = ModelThread[_GenerateJob | _ScoreJob](
            f"system2-{model_name}",
            self._run,
            rows_of=_rows_of,
            max_batch_rows=max_batch_rows,
            batch_window_s=batch_window_s,
        )
        self._warned_no_template = False

    @classmethod
    def load(
        cls,
        model: str | Path,
        *,
        model_name: str | None = None,
        dtype: str = "float32",
        threads: int | None = None,
        verifier: str | Path | None = None,
        verifier_attn_implementation: str = "sdpa",
        verify_base: bool = True,
        **kwargs: Any,
    ) -> TransformersWorker:
        """Load a catalog model (pulled with ``system2 models pull``) or a local directory.

        ``verifier`` is a directory written by ``TokenVerifier.save`` or ``TrunkHead.save``
        (``system2 verifier train``); it is rebuilt on this model (``load_verifier``, which
        checks the base weights' fingerprint unless ``verify_base`` is False) and attached.
        """
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if threads is not None:
            torch.set_num_threads(threads)
        path = resolve(str(model))
        started = time.perf_counter()
        lm = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype))
        tokenizer = AutoTokenizer.from_pretrained(path)
        kwargs.setdefault("latent", LatentModel.load(path, tokenizer))  # workers.latent
        log.info("model_loaded", model=str(model), seconds=round(time.perf_counter() - started, 2))
        attached = None
        if verifier is not None:
            started = time.perf_counter()
            attached = load_verifier(
                verifier,
                lm,
                attn_implementation=verifier_attn_implementation,
                verify_base=verify_base,
            )
            log.info(
                "verifier_loaded",
                verifier=str(verifier),
                kind=type(attached).__name__,
                seconds=round(time.perf_counter() - started, 2),
            )
        return cls(lm, tokenizer, model_name=model_name or str(model), verifier=attached, **kwargs)

    # -- guidance -------------------------------------------------------------------------

    @property
    def supports_guidance(self) -> bool:
        return self.verifier is not None

    @property
    def guidance_stats(self) -> GuidanceStats | None:
        """Running counts and seconds of the verifier's work (None without a verifier)."""
        guide = self._guidance or self._trunk
        return guide.stats if guide is not None else None

    def token_step_verifier(self) -> StepVerifier:
        """The attached verifier scoring steps (``TokenStepVerifier``/``TrunkStepVerifier``)."""
        if isinstance(self.verifier, TrunkHead):
            return TrunkStepVerifier(self.verifier, self.model, self.tokenizer)
        if self.verifier is None:
            raise UnsupportedRequest(
                self.model_name,
                "this worker has no token verifier to score steps with (set `verifier: "
                "{path: DIR}` in its transformers config; train one with `system2 verifier "
                "train`)",
            )
        return TokenStepVerifier(self.verifier, self.tokenizer)

    # -- the seam -------------------------------------------------------------------------

    async def generate(self, request: GenerateRequest) -> GenerateResult:
        result: GenerateResult = await self._thread.run(self._generate_job(request))
        return result

    async def generate_stream(self, request: GenerateRequest) -> AsyncIterator[StreamItem]:
        feed = TokenFeed(asyncio.get_running_loop())
        job = self._generate_job(request, feed)
        future = self._thread.submit(job)
        future.add_done_callback(lambda _: feed.end())
        chunks = FeedChunks(request.params.n, request.params.stop, self._decode)
        try:
            while chunks.completions is None and (items := await feed.next_batch()) is not None:
                for chunk in chunks.add(items):
                    yield chunk
            # Done when its own rows are, not when the rest of their batch is.
            done = chunks.completions
            result = self._result(job, done) if done else await asyncio.wrap_future(future)
            for chunk in chunks.finish(result):
                yield chunk
            yield result
        finally:  # the reader left (or the call ended): its rows stop at their next token
            feed.cancel()
            future.cancel()

    @property
    def streams_tokens(self) -> bool:
        return True

    async def score(self, request: ScoreRequest) -> ScoreResult:
        continuation_ids = [
            list(self.tokenizer.encode(c, add_special_tokens=False)) for c in request.continuations
        ]
        job = _ScoreJob(request, self._encode_prompt(request.prompt), continuation_ids)
        result: ScoreResult = await self._thread.run(job)
        return result

    async def decode_tokens(self, token_ids: Sequence[int]) -> str:
        return self._decode(token_ids)

    def _decode(self, token_ids: Sequence[int]) -> str:
        text: str = self.tokenizer.decode(list(token_ids), skip_special_tokens=True)
        return text

    async def close(self) -> None:
        await self._thread.close()

    # -- prompt rendering -----------------------------------------------------------------

    def render_prompt(self, prompt: Prompt) -> str:
        """The text the model reads (``workers.chat_prompt.render_prompt``; warns once when a
        chat prompt meets a model without a chat template)."""
        if (
            not isinstance(prompt, str)
            and not getattr(self.tokenizer, "chat_template", None)
            and not self._warned_no_template
        ):
            log.warning("no_chat_template", model=self.model_name, fallback="Role: content")
            self._warned_no_template = True
        return render_prompt(self.tokenizer, prompt)

    def _encode_prompt(self, prompt: Prompt, assistant_prefix: str = "") -> tuple[int, ...]:
        return encode_prompt(self.tokenizer, prompt, assistant_prefix, self.render_prompt(prompt))

    def _generate_job(
        self, request: GenerateRequest, feed: TokenFeed | None = None
    ) -> _GenerateJob:
        if request.params.guidance is not None and self.verifier is None:
            raise UnsupportedRequest(
                self.model_name,
                "the request asks for verifier guidance but this worker has no token verifier "
                "(set `verifier: {path: DIR}` in its transformers config)",
            )
        prompt_ids = self._encode_prompt(request.prompt, request.assistant_prefix)
        return _GenerateJob(request, prompt_ids, feed)

    # -- on the model thread --------------------------------------------------------------

    def _run(self, batch: list[_Job]) -> None:
        generate = [(j, f) for j, f in batch if isinstance(j, _GenerateJob)]
        for job, future in batch:
            if isinstance(job, _ScoreJob):
                try:
                    future.set_result(self._score_now(job))
                except Exception as exc:
                    future.set_exception(
                        WorkerFailure(self.model_name, f"{type(exc).__name__}: {exc}")
                    )
        if generate:
            try:
                results = self._generate_now([j for j, _ in generate])
            except Exception as exc:  # every caller of the batch learns what broke
                failure = WorkerFailure(self.model_name, f"{type(exc).__name__}: {exc}")
                for _, future in generate:
                    future.set_exception(failure)
            else:
                for (_, future), result in zip(generate, results, strict=True):
                    future.set_result(result)

    def _generate_now(self, jobs: list[_GenerateJob]) -> list[GenerateResult]:
        rows: list[DecodeRow] = []
        feeds: list[StreamedRow | None] = []  # per row: its stream and sample, if streamed
        for job in jobs:
            params = job.request.params
            base_seed = params.seed if params.seed is not None else random.getrandbits(62)
            sampling = RowSampling(params.temperature, params.top_p, params.top_k)
            rows += [
                DecodeRow(
                    job.prompt_ids,
                    sampling,
                    params.max_tokens,
                    params.stop,
                    base_seed + i,
                    params.guidance,
                    params.continuous_thoughts,
                )
                for i in range(params.n)
            ]
            feeds += [None if job.feed is None else (job.feed, i) for i in range(params.n)]
        decoded = []
        for start in range(0, len(rows), self.max_batch_rows):
            on_token, on_row_done = feed_hooks(feeds[start : start + self.max_batch_rows])
            decoded += decode_batch(
                self.model,
                self.tokenizer,
                rows[start : start + self.max_batch_rows],
                eos_token_ids=self.eos_token_ids,
                pad_token_id=self.pad_token_id,
                logits_processor=self.logits_processor,
                guidance_processor=self._guidance,
                hidden_guidance=self._trunk,
                thought_settings=self.latent.thought_settings,
                on_token=on_token,
                on_row_done=on_row_done,
            )
        results, offset = [], 0
        for job in jobs:
            mine = decoded[offset : offset + job.request.params.n]
            offset += job.request.params.n
            results.append(self._result(job, tuple(completion_of(d) for d in mine)))
        return results

    def _result(self, job: _GenerateJob, completions: tuple[Completion, ...]) -> GenerateResult:
        usage = WorkerUsage(
            prompt_tokens=len(job.prompt_ids) * job.request.params.n,
            **self.latent.usage(completions, job.request.params.continuous_thoughts),
            seconds=time.perf_counter() - job.submitted,
        )
        return GenerateResult(model=self.model_name, completions=completions, usage=usage)

    def _score_now(self, job: _ScoreJob) -> ScoreResult:
        scored = score_with_alternatives(
            self.model,
            job.prompt_ids,
            job.continuation_ids,
            pad_token_id=self.pad_token_id,
            top=job.request.top_logprobs,
        )
        scores = tuple(
            ContinuationScore(
                token_ids=tuple(ids),
                token_logprobs=tuple(s.logprobs),
                top_alternatives=tuple(
                    tuple(
                        TokenAlternative(token_id=t, logprob=lp)
                        for t, lp in zip(top_ids, top_lps, strict=True)
                    )
                    for top_ids, top_lps in zip(s.top_ids, s.top_logprobs, strict=True)
                ),
            )
            for ids, s in zip(job.continuation_ids, scored, strict=True)
        )
        usage = WorkerUsage(  # tokens run through the model: the shared prompt counts once
            prompt_tokens=len(job.prompt_ids) + sum(map(len, job.continuation_ids)),
            seconds=time.perf_counter() - job.submitted,
        )
        return ScoreResult(model=self.model_name, scores=scores, usage=usage)


def _rows_of(job: _GenerateJob | _ScoreJob) -> int:
    return job.request.params.n if isinstance(job, _GenerateJob) else 0


def _eos_ids(model: Any, tokenizer: Any) -> frozenset[int]:
    ids: set[int] = set()
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if isinstance(configured, int):
        ids.add(configured)
    elif configured:
        ids.update(int(i) for i in configured)
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    return frozenset(ids)
