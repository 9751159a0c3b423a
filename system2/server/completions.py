"""``POST /v1/chat/completions`` and ``POST /v1/completions``: one flow, two shapes.

Body (at most ``server.max_body_bytes``: 413) -> JSON (400) -> OpenAI request (400) ->
profile (404) -> ``system2`` options (400) -> admission (429 queue full, 503 draining or
no slot in time) -> the query, with ``deadline_s`` capped by what is left of
``server.request_timeout_s`` -> a completion body, or an SSE stream. A client that leaves
cancels its query (the status logged and counted is 499); a query that fails is a 502.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import structlog
from fastapi import Request
from fastapi.responses import JSONResponse, Response

from orchestrator.types import Answer
from system2.server.admission import Draining, Lease, Overloaded, QueueTimeout
from system2.server.errors import APIError, error_response
from system2.server.openai_requests import OpenAIRequest, parse_request
from system2.server.openai_responses import ResponseShape, finish_reason
from system2.server.query_run import ClientDisconnected, QueryRun, answer_unless_disconnected
from system2.server.request_options import RequestOptions, resolve_options
from system2.server.state import ServerState
from system2.server.streaming import SSEResponse, answer_chunks
from system2.server.tracing import QuerySpans

__all__ = ["CompletionEndpoint", "read_json"]

log = structlog.get_logger(__name__)

CLIENT_CLOSED = 499


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


async def read_json(request: Request, limit: int) -> object:
    """The body as JSON: 413 past ``limit`` bytes, 400 when empty or malformed."""
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > limit):
        raise _too_large(limit) if length.isdigit() else APIError(400, "bad Content-Length")
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > limit:
            raise _too_large(limit)
    if not body:
        raise APIError(400, "the request body is empty: send a JSON object")
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise APIError(400, f"the body is not valid JSON: {exc}", code="invalid_json") from None


def _too_large(limit: int) -> APIError:
    return APIError(413, f"the request body is larger than {limit} bytes", code="body_too_large")


@dataclass(frozen=True)
class CompletionEndpoint:
    """One of the two endpoints: its name (for metrics), response shape and request type."""

    name: str
    shape: ResponseShape
    request_type: type[OpenAIRequest]

    async def handle(self, state: ServerState, request: Request) -> Response:
        started = time.perf_counter()
        handling = _Handling(self, state, started)
        try:
            response = await handling.run(request)
        except APIError as exc:
            log.info("request_refused", status=exc.status, reason=exc.message)
            handling.finish(exc.status)
            return exc.response()
        if not handling.streaming:
            handling.finish(response.status_code)
        return response


class _Handling:
    """One request through the flow; counts it once, when it ends."""

    def __init__(self, endpoint: CompletionEndpoint, state: ServerState, started: float):
        self.endpoint, self.state, self.started = endpoint, state, started
        self.profile = "unknown"
        self.query_id: str | None = None
        self.streaming = False
        self._counted = False

    def finish(self, status: int) -> None:
        if self._counted:
            return
        self._counted = True
        seconds = time.perf_counter() - self.started
        self.state.metrics.observe_request(
            self.endpoint.name, self.profile, status, seconds, stream=self.streaming
        )
        log.info(
            "request_done",
            endpoint=self.endpoint.name,
            status=status,
            profile=self.profile,
            query_id=self.query_id,
            seconds=round(seconds, 3),
        )

    async def run(self, request: Request) -> Response:
        state, server = self.state, self.state.config.server
        if state.admission.draining:
            raise _unavailable("the server is shutting down", "draining", server.retry_after_s)
        data = await read_json(request, server.max_body_bytes)
        self.profile = state.profile_label(data.get("model") if isinstance(data, dict) else None)
        parsed = parse_request(data, self.endpoint.request_type)
        runtime = state.runtime(parsed.model)
        options = resolve_options(
            state.config,
            runtime.profile,
            parsed.question(),
            parsed.system2,
            parsed.sampling_overrides(),
        )
        self.query_id = options.query.id
        lease = await self._admit(server.request_timeout_s, server.retry_after_s)
        left = server.request_timeout_s - (time.perf_counter() - self.started)
        options = _capped(options, max(left, 0.001))
        spans = QuerySpans(
            state.tracing.tracer,
            profile=self.profile,
            query_id=options.query.id,
            endpoint=self.endpoint.name,
        )
        run = QueryRun(
            runtime.orchestrator,
            options,
            observers=(state.metrics.observe_event, spans.on_event),
        )
        if parsed.stream:
            self.streaming = True
            return self._stream(run, lease, spans, parsed.model)
        try:
            answer = await answer_unless_disconnected(run, request.receive)
        except ClientDisconnected:
            spans.end(None, outcome="cancelled")
            return Response(status_code=CLIENT_CLOSED)
        finally:
            lease.release()
        self._answered(answer, spans)
        if answer.status == "failed":
            message = "; ".join(answer.trace.failures) or "the query failed"
            return error_response(502, message, code="query_failed")
        body = self.endpoint.shape.body(
            answer,
            finish=finish_reason(answer, run.decided),
            model=parsed.model,
            created=int(time.time()),
            trace=options.trace,
        )
        return JSONResponse(body)

    async def _admit(self, timeout_s: float, retry_after_s: int) -> Lease:
        admission = self.state.admission
        try:
            return await admission.admit(timeout_s)
        except Overloaded:
            raise APIError(
                429,
                f"too many queries: {admission.running} running and {admission.waiting} "
                "waiting; retry later",
                code="queue_full",
                headers={"Retry-After": str(retry_after_s)},
            ) from None
        except Draining:
            raise _unavailable("the server is shutting down", "draining", retry_after_s) from None
        except QueueTimeout:
            raise _unavailable(
                "no slot freed up within the request timeout", "queue_timeout", retry_after_s
            ) from None

    def _answered(self, answer: Answer, spans: QuerySpans) -> None:
        self.state.metrics.observe_answer(self.profile, answer)
        spans.end(answer, outcome="failed" if answer.status == "failed" else "ok")

    def _stream(self, run: QueryRun, lease: Lease, spans: QuerySpans, model: str) -> Response:
        outcome: dict[str, Answer] = {}

        def first_content() -> None:
            self.state.metrics.ttft.labels(self.profile).observe(time.perf_counter() - self.started)

        def answered(answer: Answer) -> None:
            outcome["answer"] = answer
            self._answered(answer, spans)

        async def close() -> None:
            await run.cancel_and_wait()
            lease.release()
            if "answer" not in outcome:
                spans.end(None, outcome="cancelled")
                self.finish(CLIENT_CLOSED)
            else:
                self.finish(200)

        chunks = answer_chunks(
            run,
            self.endpoint.shape,
            model=model,
            created=int(time.time()),
            on_first_content=first_content,
            on_answer=answered,
        )
        return SSEResponse(chunks, on_close=close)


def _unavailable(message: str, code: str, retry_after_s: int) -> APIError:
    return APIError(503, message, code=code, headers={"Retry-After": str(retry_after_s)})


def _capped(options: RequestOptions, seconds_left: float) -> RequestOptions:
    """``options`` with its deadline no later than ``seconds_left`` from now."""
    deadline = options.budget.deadline_s
    if deadline is not None and deadline <= seconds_left:
        return options
    budget = options.budget.model_copy(update={"deadline_s": seconds_left})
    return RequestOptions(options.query, options.strategy, budget, options.trace)
