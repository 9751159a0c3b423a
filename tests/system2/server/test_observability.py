"""OpenTelemetry spans (query -> plan -> each worker call), the OTLP switch, and
structured request logs carrying the query id."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NoOpTracer
from structlog.testing import capture_logs

from system2.server import create_app
from system2.server.tracing import Tracing, make_tracing
from tests.system2.server.conftest import chat, client_for, make_config


async def test_spans_of_a_query() -> None:
    """One query gives a ``system2.query`` span with ``system2.plan`` and one
    ``system2.worker_call`` per call under it, carrying model and tokens."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = create_app(make_config(), tracing=Tracing(provider.get_tracer("test"), provider))
    async with client_for(app) as client:
        body = (await client.post("/v1/chat/completions", json=chat("both"))).json()
    spans = {s.name: [] for s in exporter.get_finished_spans()}
    for span in exporter.get_finished_spans():
        spans[span.name].append(span)
    (query,) = spans["system2.query"]
    (plan,) = spans["system2.plan"]
    calls = spans["system2.worker_call"]
    assert query.attributes is not None
    assert query.attributes["system2.profile"] == "both"
    assert query.attributes["system2.query_id"] == body["system2"]["query_id"]
    assert plan.parent is not None
    assert plan.parent.span_id == query.context.span_id
    assert sorted(c.attributes["system2.model"] for c in calls if c.attributes) == ["m", "other"]
    assert all(c.parent is not None and c.parent.span_id == query.context.span_id for c in calls)
    assert (
        sum(c.attributes["system2.completion_tokens"] for c in calls if c.attributes)
        == (body["usage"]["completion_tokens"])
    )
    provider.shutdown()


def test_otlp_export_only_when_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    """No OTEL endpoint: a no-op tracer; with one: an SDK provider exporting over OTLP."""
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    assert isinstance(make_tracing().tracer, NoOpTracer)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    tracing = make_tracing()
    assert isinstance(tracing.provider, TracerProvider)
    tracing.shutdown()


async def test_request_logs_carry_the_query_id() -> None:
    """Each request ends with one ``request_done`` log event naming its query, profile,
    status and latency."""
    app = create_app(make_config())
    async with client_for(app) as client:
        with capture_logs() as logs:
            body = (await client.post("/v1/chat/completions", json=chat("greedy"))).json()
    query_id = body["system2"]["query_id"]
    done = [e for e in logs if e["event"] == "request_done"]
    assert len(done) == 1
    assert done[0]["query_id"] == query_id
    assert (done[0]["profile"], done[0]["status"]) == ("greedy", 200)
    assert isinstance(done[0]["seconds"], float)
