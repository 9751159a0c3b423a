"""OpenTelemetry spans of each query: ``system2.query`` with, under it, ``system2.plan``
(until the policy's plan is made) and one ``system2.worker_call`` per worker call (model,
kind, samples, tokens, error or cancelled).

Spans are exported over OTLP/HTTP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or the traces
variant) is set, with the standard ``OTEL_*`` settings; otherwise the tracer is a no-op.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode, Tracer

from orchestrator.events import CallFinished, CallStarted, Planned, QueryEvent
from orchestrator.types import Answer

__all__ = ["QuerySpans", "Tracing", "make_tracing"]

_ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


@dataclass
class Tracing:
    """The tracer, and how to flush it at shutdown (nothing for the no-op one)."""

    tracer: Tracer
    provider: object | None = None

    def shutdown(self) -> None:
        shutdown = getattr(self.provider, "shutdown", None)
        if shutdown is not None:
            shutdown()


def make_tracing(service_name: str = "system2") -> Tracing:
    """An OTLP-exporting tracer if an endpoint is configured, else a no-op one."""
    if not any(os.environ.get(v) for v in _ENDPOINT_VARS):
        return Tracing(trace.NoOpTracer())
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return Tracing(provider.get_tracer("system2.server"), provider)


class QuerySpans:
    """The spans of one query, opened and closed as its events arrive."""

    def __init__(self, tracer: Tracer, *, profile: str, query_id: str, endpoint: str) -> None:
        self._tracer = tracer
        self.root = tracer.start_span(
            "system2.query",
            attributes={
                "system2.profile": profile,
                "system2.query_id": query_id,
                "system2.endpoint": endpoint,
            },
        )
        self._context = trace.set_span_in_context(self.root)
        self._plan: Span | None = tracer.start_span("system2.plan", context=self._context)
        self._calls: dict[int, Span] = {}

    def on_event(self, event: QueryEvent) -> None:
        if isinstance(event, Planned) and self._plan is not None:
            self._plan.set_attribute("system2.models", list(event.models))
            self._plan.set_attribute("system2.strategy", event.strategy)
            self._plan.end()
            self._plan = None
        elif isinstance(event, CallStarted):
            self._calls[event.call_id] = self._tracer.start_span(
                "system2.worker_call",
                context=self._context,
                attributes={
                    "system2.model": event.model,
                    "system2.kind": event.kind,
                    "system2.n": event.n,
                },
            )
        elif isinstance(event, CallFinished):
            span = self._calls.pop(event.call_id, None)
            if span is None:
                return
            span.set_attribute("system2.prompt_tokens", event.prompt_tokens)
            span.set_attribute("system2.completion_tokens", event.completion_tokens)
            span.set_attribute("system2.failovers", event.failovers)
            if event.cancelled:
                span.set_attribute("system2.cancelled", True)
            if event.error is not None:
                span.set_status(Status(StatusCode.ERROR, event.error))
            span.end()

    def end(self, answer: Answer | None, *, outcome: str) -> None:
        """Close every span still open; ``outcome``: ok, failed, cancelled, error."""
        now = time.time_ns()
        for span in [*self._calls.values(), *([self._plan] if self._plan else [])]:
            span.end(end_time=now)
        self._calls.clear()
        self._plan = None
        self.root.set_attribute("system2.outcome", outcome)
        if answer is not None:
            self.root.set_attribute("system2.status", answer.status)
            self.root.set_attribute("system2.completion_tokens", answer.usage.completion_tokens)
            self.root.set_attribute("system2.prompt_tokens", answer.usage.prompt_tokens)
        if outcome in ("failed", "error"):
            self.root.set_status(Status(StatusCode.ERROR, outcome))
        self.root.end(end_time=now)
