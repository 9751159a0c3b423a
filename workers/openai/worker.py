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
* ``health``: ``GET /health`` (a 404 is skipped), then ``GET /v1/models`` must list the
  served model. ``step_scores``: a process reward model behind ``POST /pooling``.

Every transport problem, HTTP error, malformed body or missing field raises
``WorkerFailure`` naming the URL and what was wrong (bodies are read by
``workers.openai.responses``); HTTP 4xx other than 408/429 raises its
subclass ``RequestRejected`` (``retryable = False``: another replica would refuse it too).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine, Mapping, Sequence
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
    Worker,
    WorkerUsage,
)
from workers.errors import UnsupportedRequest, WorkerFailure
from workers.openai.responses import (
    ResponseReader,
    read_chat_completion,
    read_completion,
    read_continuation,
    read_step_score,
)

__all__ = ["OpenAIWorker", "RequestRejected"]

_T = TypeVar("_T")

_RETRYABLE_4XX = frozenset({408, 429})
_SNIPPET = 200


class RequestRejected(WorkerFailure):
    """The server refused the request itself (HTTP 4xx): retrying elsewhere will not help."""

    retryable = False

    def __init__(self, model: str, reason: str, status: int) -> None:
        super().__init__(model, reason)
        self.status = status


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
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None

    # -- the seam -------------------------------------------------------------------------

    async def generate(self, request: GenerateRequest) -> GenerateResult:
        if request.params.guidance is not None:
            raise UnsupportedRequest(self.model_name, "verifier guidance is not served over HTTP")
        started = time.perf_counter()
        p = request.params
        if p.seed is not None and p.n > 1 and not p.greedy:
            parts = await _all([self._sample(request, 1, p.seed + i) for i in range(p.n)])
        else:
            parts = [await self._sample(request, p.n, p.seed)]
        completions = tuple(c for part in parts for c in part.completions)
        usage = WorkerUsage(
            prompt_tokens=sum(part.prompt_tokens * len(part.completions) for part in parts),
            completion_tokens=sum(part.completion_tokens for part in parts),
            seconds=time.perf_counter() - started,
        )
        return GenerateResult(model=self.model_name, completions=completions, usage=usage)

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
        data, url = await self._call("POST", "/v1/completions", body)
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
        data, url = await self._call("POST", "/detokenize", body)
        return ResponseReader(self.model_name, f"POST {url}").string(data, "prompt", "")

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None and self._client_loop is asyncio.get_running_loop():
            await client.aclose()

    # -- beyond the seam ------------------------------------------------------------------

    async def health(self) -> None:
        """Return if the server is up and serves this model; else raise ``WorkerFailure``."""
        try:
            await self._call("GET", "/health", limit_s=self.health_timeout_s, parse=False)
        except RequestRejected as exc:
            if exc.status != 404:  # a server without /health: ask /v1/models
                raise
        data, url = await self._call("GET", "/v1/models", limit_s=self.health_timeout_s)
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
        data, url = await self._call("POST", "/pooling", body)
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
        chat = not isinstance(prompt, str)
        if isinstance(prompt, str):
            body.update(prompt=prompt + prefix, logprobs=0)
            data, url = await self._call("POST", "/v1/completions", body)
        else:
            messages = [m.model_dump() for m in prompt]
            if prefix:  # vLLM renders the open assistant turn and continues it
                messages.append({"role": "assistant", "content": prefix})
                body.update(add_generation_prompt=False, continue_final_message=True)
            body.update(messages=messages, logprobs=True)
            data, url = await self._call("POST", "/v1/chat/completions", body)
        r = ResponseReader(self.model_name, f"POST {url}")
        read = read_chat_completion if chat else read_completion
        read_choices = [
            read(r, c, f"choices[{i}]", p.stop) for i, c in enumerate(r.choices(data, n))
        ]
        usage = r.field(data, "usage", "")
        return _Sampled(
            tuple(completion for completion, _ in read_choices),
            prompt_tokens=r.integer(usage, "prompt_tokens", "usage"),
            completion_tokens=r.integer(usage, "completion_tokens", "usage")
            - sum(dropped for _, dropped in read_choices),
        )

    # -- tokens -------------------------------------------------------------------------

    async def _tokenize(self, prompt: Prompt, *, special: bool) -> list[int]:
        """The server's token ids for a text (``special``: with the tokenizer's special
        tokens, e.g. BOS) or for chat messages rendered by its chat template."""
        body: dict[str, Any] = {"model": self.served_model}
        if isinstance(prompt, str):
            body.update(prompt=prompt, add_special_tokens=special)
        else:
            body.update(messages=[m.model_dump() for m in prompt], add_generation_prompt=True)
        data, url = await self._call("POST", "/tokenize", body)
        r = ResponseReader(self.model_name, f"POST {url}")
        return [r.integer_at(t, f"tokens[{j}]") for j, t in enumerate(r.array(data, "tokens", ""))]

    # -- HTTP -----------------------------------------------------------------------------

    def _http(self) -> httpx.AsyncClient:
        """The client for the running event loop (connections cannot outlive their loop, and
        ``asyncio.run`` may be called once per query)."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self.timeout_s, connect=self.connect_timeout_s),
                headers=self._headers,
                transport=self._transport,
            )
            self._client_loop = loop
        return self._client

    async def _call(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        limit_s: float | None = None,
        parse: bool = True,
    ) -> tuple[Any, str]:
        """Send one request; return its parsed JSON body (None unless ``parse``) and URL."""
        url = f"{self.base_url}{path}"
        what = f"{method} {url}"
        limit = httpx.Timeout(limit_s) if limit_s is not None else httpx.USE_CLIENT_DEFAULT
        try:
            response = await self._http().request(method, url, json=body, timeout=limit)
        except httpx.TimeoutException as exc:
            seconds = limit_s or self.timeout_s
            raise WorkerFailure(
                self.model_name,
                f"timed out ({type(exc).__name__}; limit {seconds:g}s, connect "
                f"{self.connect_timeout_s:g}s) on {what}",
            ) from exc
        except httpx.ConnectError as exc:
            raise WorkerFailure(self.model_name, f"cannot connect for {what}: {exc}") from exc
        except httpx.RemoteProtocolError as exc:
            raise WorkerFailure(
                self.model_name, f"connection broke mid-response (truncated?) on {what}: {exc}"
            ) from exc
        except httpx.HTTPError as exc:
            raise WorkerFailure(self.model_name, f"{type(exc).__name__} on {what}: {exc}") from exc
        status = response.status_code
        if status >= 400:
            reason = f"HTTP {status} from {what}: {_snippet(response.text)}"
            if status < 500 and status not in _RETRYABLE_4XX:
                raise RequestRejected(self.model_name, reason, status)
            raise WorkerFailure(self.model_name, reason)
        if not parse:
            return None, url
        try:
            return response.json(), url
        except ValueError as exc:
            raise WorkerFailure(
                self.model_name,
                f"malformed JSON (HTTP {status}, {len(response.content)} bytes, truncated?) "
                f"from {what}: {exc}; body starts {_snippet(response.text)}",
            ) from exc


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


def _root(base_url: str) -> str:
    root = base_url.rstrip("/")
    return root.removesuffix("/v1")


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= _SNIPPET else text[:_SNIPPET] + "...")
