"""``OpenAIWorker``: a model behind any OpenAI-compatible HTTP server (e.g. ``vllm serve``).

* ``generate``: chat messages go to ``/v1/chat/completions`` (the server renders its own
  chat template), a string prompt to ``/v1/completions``. Per-token log-probs are always
  requested. With a seed and ``n > 1`` the call is split into ``n`` concurrent requests
  with ``n=1`` and seeds ``seed + i``, so sample ``i`` uses ``seed + i`` as
  ``SamplingParams`` promises. ``prompt_tokens`` is charged once per sample (as the
  in-process worker does), whatever the server counts for ``n > 1``.
* ``assistant_prefix``: appended to a string prompt; for chat it becomes a final assistant
  message sent with vLLM's ``continue_final_message: true, add_generation_prompt: false``.
* Token ids come from vLLM's ``return_token_ids`` (vLLM >= 0.10.2: ``choices[i].token_ids``
  and ``prompt_token_ids``). A server without it leaves ``Completion.token_ids`` empty
  (the text and log-probs are still right). ``return_tokens_as_token_ids`` is not used:
  it replaces the token strings that stop strings are found in.
* Stop strings: the server cuts the text, but its token ids, log-probs and
  ``completion_tokens`` still hold the stop string's tokens; they are cut to the tokens of
  the returned text (``workers.stops``) and ``completion_tokens`` is lowered by
  as many, so usage counts what ``TransformersWorker`` counts.
* ``score`` (vLLM's extensions): the prompt and each continuation are tokenized apart by
  ``POST /tokenize`` (a string with ``add_special_tokens`` for the prompt, without for a
  continuation; chat ``messages`` with ``add_generation_prompt``, so the served model's own
  chat template renders them), as ``TransformersWorker`` does. One ``/v1/completions``
  call then sends ``prompt = [prompt_ids + continuation_ids, ...]`` with
  ``prompt_logprobs: k`` and ``max_tokens: 1`` (the one generated token is not counted);
  the continuation positions' entries give its tokens' log-probs and, for
  ``top_logprobs = k > 0``, the k most probable tokens there (at most the server's
  ``--max-logprobs``, 20 by default).
* ``decode_tokens``: ``POST /detokenize``. vLLM decodes with special tokens kept, where
  ``TransformersWorker`` drops them.
* ``generate_stream``: the same requests with ``stream: true`` and ``stream_options:
  {"include_usage": true}``; each choice delta is passed on as it arrives, and the
  events joined are read as the whole response is (``workers.openai.streaming``), so the
  final result equals ``generate``'s. Closing the stream closes the HTTP response (vLLM
  then aborts the request).
* ``health``: ``GET /health`` (a 404 is skipped), then ``GET /v1/models`` must list the
  served model. ``step_scores``: a process reward model behind ``POST /pooling``.

Every transport problem, HTTP error, malformed body or missing field raises
``WorkerFailure`` naming the URL and what was wrong (``workers.openai.http``; bodies are
read by ``workers.openai.responses``); HTTP 4xx other than 408/429 raises its
subclass ``RequestRejected`` (``retryable = False``: another replica would refuse it too).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from workers.base import (
    Completion,
    GenerateRequest,
    GenerateResult,
    Prompt,
    ScoreRequest,
    ScoreResult,
    StreamItem,
    TokenChunk,
    Worker,
    WorkerUsage,
)
from workers.errors import UnsupportedRequest, WorkerFailure
from workers.latent.serving import refuse_thoughts
from workers.openai.http import RequestRejected, ServerClient
from workers.openai.responses import (
    ResponseReader,
    read_chat_completion,
    read_completion,
    read_continuation,
    read_step_score,
)
from workers.openai.streaming import StreamedChoices
from workers.streaming import merge_streams

__all__ = ["OpenAIWorker", "RequestRejected"]

_T = TypeVar("_T")


class OpenAIWorker(Worker):
    """A model served over the OpenAI HTTP API; ``model`` is the served model name.

    Example:
        >>> worker = OpenAIWorker("http://127.0.0.1:8000", model="qwen")  # doctest: +SKIP
        >>> result = await worker.generate(GenerateRequest(prompt="2+2="))  # doctest: +SKIP
    """

    def __init__(
        self,
        base_url: str,
        *,
        model: str,
        model_name: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 120.0,
        connect_timeout_s: float = 5.0,
        health_timeout_s: float = 5.0,
        token_ids: bool = True,
        step_tag: str = "<extra_0>",
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = _root(base_url)
        self.served_model = model
        self.model_name = model_name or model
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.health_timeout_s = health_timeout_s
        self.token_ids = token_ids
        self.step_tag = step_tag
        self._server = ServerClient(
            self.model_name,
            self.base_url,
            headers={"Authorization": f"Bearer {api_key}"} if api_key else {},
            timeout_s=timeout_s,
            connect_timeout_s=connect_timeout_s,
            transport=transport,
        )

    # -- the seam -------------------------------------------------------------------------

    async def generate(self, request: GenerateRequest) -> GenerateResult:
        if request.params.guidance is not None:
            raise UnsupportedRequest(self.model_name, "verifier guidance is not served over HTTP")
        refuse_thoughts(self.model_name, request.params, "an OpenAI-compatible HTTP server")
        started = time.perf_counter()
        seeds = _seeds(request)
        if seeds is not None:
            parts = await _all([self._sample(request, 1, seed) for seed in seeds])
        else:
            parts = [await self._sample(request, request.params.n, request.params.seed)]
        return self._result(parts, started)

    async def generate_stream(self, request: GenerateRequest) -> AsyncIterator[StreamItem]:
        if request.params.guidance is not None:
            raise UnsupportedRequest(self.model_name, "verifier guidance is not served over HTTP")
        refuse_thoughts(self.model_name, request.params, "an OpenAI-compatible HTTP server")
        started = time.perf_counter()
        seeds = _seeds(request)
        if seeds is not None:  # sample i is the stream of the call with seed + i
            merged = merge_streams([self._sample_stream(request, 1, seed) for seed in seeds])
        else:
            p = request.params
            merged = merge_streams([self._sample_stream(request, p.n, p.seed)])
        parts: dict[int, _Sampled] = {}
        async with contextlib.aclosing(merged):
            async for k, item in merged:
                if isinstance(item, _Sampled):
                    parts[k] = item
                else:
                    yield item.model_copy(update={"index": item.index + k})
        yield self._result([parts[k] for k in sorted(parts)], started)

    @property
    def streams_tokens(self) -> bool:
        return True

    async def score(self, request: ScoreRequest) -> ScoreResult:
        started = time.perf_counter()
        prompt_ids, *continuation_ids = await _all(
            [
                self._tokenize(request.prompt, special=True),
                *(self._tokenize(c, special=False) for c in request.continuations),
            ]
        )
        if not prompt_ids:
            raise UnsupportedRequest(
                self.model_name, "the prompt encodes to no tokens; scoring needs one"
            )
        k = request.top_logprobs
        body: dict[str, Any] = {
            "model": self.served_model,
            "prompt": [[*prompt_ids, *ids] for ids in continuation_ids],
            "max_tokens": 1,
            "temperature": 0.0,
            "prompt_logprobs": k,
        }
        data, url = await self._server.call("POST", "/v1/completions", body)
        r = ResponseReader(self.model_name, f"POST {url}")
        choices = r.choices(data, len(continuation_ids))
        scores = tuple(
            read_continuation(r, choice, f"choices[{i}]", len(prompt_ids), ids, k)
            for i, (choice, ids) in enumerate(zip(choices, continuation_ids, strict=True))
        )
        usage = WorkerUsage(
            prompt_tokens=r.integer(r.field(data, "usage", ""), "prompt_tokens", "usage"),
            seconds=time.perf_counter() - started,
        )
        return ScoreResult(model=self.model_name, scores=scores, usage=usage)

    async def decode_tokens(self, token_ids: Sequence[int]) -> str:
        if not token_ids:
            return ""
        body = {"model": self.served_model, "tokens": list(token_ids)}
        data, url = await self._server.call("POST", "/detokenize", body)
        return ResponseReader(self.model_name, f"POST {url}").string(data, "prompt", "")

    async def close(self) -> None:
        await self._server.aclose()

    # -- beyond the seam ------------------------------------------------------------------

    async def health(self) -> None:
        """Return if the server is up and serves this model; else raise ``WorkerFailure``."""
        try:
            await self._server.call("GET", "/health", limit_s=self.health_timeout_s, parse=False)
        except RequestRejected as exc:
            if exc.status != 404:  # a server without /health: ask /v1/models
                raise
        data, url = await self._server.call("GET", "/v1/models", limit_s=self.health_timeout_s)
        r = ResponseReader(self.model_name, f"GET {url}")
        served = [
            r.string(r.obj(item, f"data[{i}]"), "id", f"data[{i}]")
            for i, item in enumerate(r.array(data, "data", ""))
        ]
        if self.served_model not in served:
            raise WorkerFailure(
                self.model_name,
                f"GET {url} lists {served}, not the model {self.served_model!r}",
            )

    async def step_scores(
        self, prompt: Prompt, steps: Sequence[str], *, extra: Mapping[str, Any] | None = None
    ) -> tuple[float, ...]:
        """P(step is correct) for each step, from a process reward model (PRM) served with
        ``vllm serve --runner pooling`` (e.g. Qwen2.5-Math-PRM, step tag ``<extra_0>``).

        Assumed shapes. Request: ``{"model", "input": prompt + "".join(s + step_tag)}`` for a
        string prompt, or ``{"model", "messages": [*prompt, {"role": "assistant",
        "content": "".join(s + step_tag)}], "add_generation_prompt": false}`` for chat;
        ``extra`` is merged in (e.g. a ``task`` field). Response: ``{"data": [{"data":
        rows}]}`` with one row per step tag, each a number or class probabilities whose
        last entry is P(correct).
        """
        if not steps:
            return ()
        tagged = "".join(step + self.step_tag for step in steps)
        body: dict[str, Any] = {"model": self.served_model}
        if isinstance(prompt, str):
            body["input"] = prompt + tagged
        else:
            messages = [m.model_dump() for m in prompt]
            body["messages"] = [*messages, {"role": "assistant", "content": tagged}]
            body["add_generation_prompt"] = False
        body.update(extra or {})
        data, url = await self._server.call("POST", "/pooling", body)
        r = ResponseReader(self.model_name, f"POST {url}")
        items = r.array(data, "data", "")
        if not items:
            raise r.fail("an empty data list")
        rows = r.array(r.obj(items[0], "data[0]"), "data", "data[0]")
        if len(rows) != len(steps):
            raise r.fail(
                f"{len(rows)} step rows for {len(steps)} steps (is {self.step_tag!r} the "
                "model's step tag?)"
            )
        return tuple(read_step_score(r, row, f"data[0].data[{i}]") for i, row in enumerate(rows))

    # -- generation -----------------------------------------------------------------------

    async def _sample(self, request: GenerateRequest, n: int, seed: int | None) -> _Sampled:
        path, body = self._body(request, n, seed)
        data, url = await self._server.call("POST", path, body)
        return self._read(ResponseReader(self.model_name, f"POST {url}"), data, request, n)

    async def _sample_stream(
        self, request: GenerateRequest, n: int, seed: int | None
    ) -> AsyncGenerator[TokenChunk | _Sampled, None]:
        """``_sample``, streamed: the chunks as they come, then the ``_Sampled``."""
        path, body = self._body(request, n, seed)
        body.update(stream=True, stream_options={"include_usage": True})
        r = ResponseReader(self.model_name, f"POST {self.base_url}{path} (stream)")
        choices = StreamedChoices(r, n, chat=not isinstance(request.prompt, str))
        async with contextlib.aclosing(self._server.stream(path, body)) as events:
            async for event in events:
                for chunk in choices.add(event):
                    yield chunk
        yield self._read(r, choices.body(), request, n)

    def _body(self, request: GenerateRequest, n: int, seed: int | None) -> tuple[str, Any]:
        """The path and body of a request for ``n`` samples of ``request``."""
        prompt, p, prefix = request.prompt, request.params, request.assistant_prefix
        body: dict[str, Any] = {
            "model": self.served_model,
            "n": n,
            "temperature": p.temperature,
            "top_p": p.top_p,
            "max_tokens": p.max_tokens,
        }
        if p.top_k > 0:
            body["top_k"] = p.top_k  # a vLLM extension of the OpenAI API
        if p.stop:
            body["stop"] = list(p.stop)
        if seed is not None:
            body["seed"] = seed
        if self.token_ids:
            body["return_token_ids"] = True
        if isinstance(prompt, str):
            body.update(prompt=prompt + prefix, logprobs=0)
            return "/v1/completions", body
        messages = [m.model_dump() for m in prompt]
        if prefix:  # vLLM renders the open assistant turn and continues it
            messages.append({"role": "assistant", "content": prefix})
            body.update(add_generation_prompt=False, continue_final_message=True)
        body.update(messages=messages, logprobs=True)
        return "/v1/chat/completions", body

    def _read(self, r: ResponseReader, data: Any, request: GenerateRequest, n: int) -> _Sampled:
        read = read_completion if isinstance(request.prompt, str) else read_chat_completion
        stops = request.params.stop
        read_choices = [
            read(r, c, f"choices[{i}]", stops) for i, c in enumerate(r.choices(data, n))
        ]
        usage = r.field(data, "usage", "")
        return _Sampled(
            tuple(completion for completion, _ in read_choices),
            prompt_tokens=r.integer(usage, "prompt_tokens", "usage"),
            completion_tokens=r.integer(usage, "completion_tokens", "usage")
            - sum(dropped for _, dropped in read_choices),
        )

    def _result(self, parts: Sequence[_Sampled], started: float) -> GenerateResult:
        """One result of the parts' completions; ``prompt_tokens`` charged per sample."""
        completions = tuple(c for part in parts for c in part.completions)
        usage = WorkerUsage(
            prompt_tokens=sum(part.prompt_tokens * len(part.completions) for part in parts),
            completion_tokens=sum(part.completion_tokens for part in parts),
            seconds=time.perf_counter() - started,
        )
        return GenerateResult(model=self.model_name, completions=completions, usage=usage)

    # -- tokens -------------------------------------------------------------------------

    async def _tokenize(self, prompt: Prompt, *, special: bool) -> list[int]:
        """The server's token ids for a text (``special``: with the tokenizer's special
        tokens, e.g. BOS) or for chat messages rendered by its chat template."""
        body: dict[str, Any] = {"model": self.served_model}
        if isinstance(prompt, str):
            body.update(prompt=prompt, add_special_tokens=special)
        else:
            body.update(messages=[m.model_dump() for m in prompt], add_generation_prompt=True)
        data, url = await self._server.call("POST", "/tokenize", body)
        r = ResponseReader(self.model_name, f"POST {url}")
        return [r.integer_at(t, f"tokens[{j}]") for j, t in enumerate(r.array(data, "tokens", ""))]


@dataclass(frozen=True)
class _Sampled:
    completions: tuple[Completion, ...]
    prompt_tokens: int
    completion_tokens: int


async def _all(calls: Sequence[Coroutine[Any, Any, _T]]) -> list[_T]:
    """Run the calls concurrently; the first failure cancels the rest and is raised."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(call) for call in calls]
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None
    return [task.result() for task in tasks]


def _seeds(request: GenerateRequest) -> list[int] | None:
    """The seeds ``seed + i`` of the ``n`` calls a seeded request's samples go as; None
    when they go as one call."""
    p = request.params
    if p.seed is None or p.n == 1 or p.greedy:
        return None
    return [p.seed + i for i in range(p.n)]


def _root(base_url: str) -> str:
    root = base_url.rstrip("/")
    return root.removesuffix("/v1")
