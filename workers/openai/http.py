"""``ServerClient``: the HTTP side of ``OpenAIWorker``, one call or one event stream at a time.

Every transport problem, HTTP error or malformed body raises ``WorkerFailure`` naming the
URL and what was wrong; HTTP 4xx other than 408/429 raises its subclass
``RequestRejected`` (``retryable = False``: another replica would refuse it too).

``stream`` posts with ``"stream": true`` and yields the server-sent events' JSON payloads
(``data: {...}`` lines, up to ``data: [DONE]``); leaving it closes the response, so the
server sees the client go and (vLLM) aborts the request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator, Iterator, Mapping
from typing import Any

import httpx

from workers.errors import WorkerFailure

__all__ = ["RequestRejected", "ServerClient"]

_RETRYABLE_4XX = frozenset({408, 429})
_SNIPPET = 200


class RequestRejected(WorkerFailure):
    """The server refused the request itself (HTTP 4xx): retrying elsewhere will not help."""

    retryable = False

    def __init__(self, model: str, reason: str, status: int) -> None:
        super().__init__(model, reason)
        self.status = status

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.model, self.reason, self.status)


class ServerClient:
    """HTTP calls for model ``model_name`` to the server at ``base_url``."""

    def __init__(
        self,
        model_name: str,
        base_url: str,
        *,
        headers: Mapping[str, str],
        timeout_s: float,
        connect_timeout_s: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.model_name = model_name
        self.base_url = base_url
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self._headers = dict(headers)
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None

    async def call(
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
        with self._failures(what, limit_s):
            response = await self._http().request(method, url, json=body, timeout=limit)
        self._check_status(response, what)
        if not parse:
            return None, url
        try:
            return response.json(), url
        except ValueError as exc:
            raise WorkerFailure(
                self.model_name,
                f"malformed JSON (HTTP {response.status_code}, {len(response.content)} bytes, "
                f"truncated?) from {what}: {exc}; body starts {_snippet(response.text)}",
            ) from exc

    async def stream(self, path: str, body: Mapping[str, Any]) -> AsyncGenerator[Any, None]:
        """POST ``body`` to ``path`` as a stream; yield each event's parsed payload."""
        url = f"{self.base_url}{path}"
        what = f"POST {url} (stream)"
        async with contextlib.AsyncExitStack() as stack:
            with self._failures(what, None):
                response = await stack.enter_async_context(
                    self._http().stream("POST", url, json=body)
                )
                if response.status_code >= 400:
                    await response.aread()
            self._check_status(response, what)
            lines = response.aiter_lines()
            while True:
                with self._failures(what, None):
                    line = await anext(lines, None)
                if line is None:
                    raise WorkerFailure(
                        self.model_name, f"the stream ended before [DONE] on {what}"
                    )
                if not line.startswith("data:"):
                    continue  # blank separators, comments, other SSE fields
                payload = line[len("data:") :].strip()
                if payload == "[DONE]":
                    return
                try:
                    yield json.loads(payload)
                except ValueError as exc:
                    raise WorkerFailure(
                        self.model_name,
                        f"malformed JSON in an event from {what}: {exc}; {_snippet(payload)}",
                    ) from exc

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None and self._client_loop is asyncio.get_running_loop():
            await client.aclose()

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

    @contextlib.contextmanager
    def _failures(self, what: str, limit_s: float | None) -> Iterator[None]:
        """httpx's errors as ``WorkerFailure``s saying what went wrong on ``what``."""
        try:
            yield
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

    def _check_status(self, response: httpx.Response, what: str) -> None:
        status = response.status_code
        if status < 400:
            return
        reason = f"HTTP {status} from {what}: {_snippet(response.text)}"
        if status < 500 and status not in _RETRYABLE_4XX:
            raise RequestRejected(self.model_name, reason, status)
        raise WorkerFailure(self.model_name, reason)


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= _SNIPPET else text[:_SNIPPET] + "...")
