"""Prometheus metrics of the server, in a registry of its own (``/metrics``).

Per request: count by endpoint, profile and status; latency and, for streams, time to
first token (the first content byte). Per worker call, as the events come: calls by
model, kind and outcome (ok, error, cancelled), tokens by model and kind, fail-overs. Per
answered query: failures, what stopped it early, the vote margin. Gauges: queries
running and waiting in the admission queue.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from orchestrator.events import CallFinished, QueryEvent
from orchestrator.types import Answer

__all__ = ["METRICS_CONTENT_TYPE", "ServerMetrics"]

METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


class ServerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "system2_requests", "Requests answered", ["endpoint", "profile", "status"], registry=r
        )
        self.latency = Histogram(
            "system2_request_seconds",
            "Request latency, admission wait included",
            ["endpoint", "profile", "stream"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "system2_time_to_first_token_seconds",
            "Streams: seconds from the request to its first content",
            ["profile"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.worker_calls = Counter(
            "system2_worker_calls", "Worker calls", ["model", "kind", "outcome"], registry=r
        )
        self.tokens = Counter("system2_tokens", "Tokens by model", ["model", "kind"], registry=r)
        self.failovers = Counter(
            "system2_failovers", "Pool fail-overs to another replica", ["model"], registry=r
        )
        self.failures = Counter(
            "system2_query_failures", "Failures recorded in traces", ["profile"], registry=r
        )
        self.stopped = Counter(
            "system2_queries_stopped", "Queries stopped early", ["profile", "reason"], registry=r
        )
        self.vote_margin = Histogram(
            "system2_vote_margin",
            "(top - runner-up) / total of each vote",
            ["profile"],
            buckets=(0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
            registry=r,
        )
        self.running = Gauge("system2_queries_running", "Queries being answered", registry=r)
        self.waiting = Gauge("system2_queue_depth", "Queries waiting for a slot", registry=r)

    def track_queue(self, running: Callable[[], float], waiting: Callable[[], float]) -> None:
        """Read the gauges from the admission queue at each scrape."""
        self.running.set_function(running)
        self.waiting.set_function(waiting)

    def observe_event(self, event: QueryEvent) -> None:
        """Count a finished worker call (its tokens and fail-overs)."""
        if not isinstance(event, CallFinished):
            return
        outcome = "cancelled" if event.cancelled else "error" if event.error else "ok"
        self.worker_calls.labels(event.model, event.kind, outcome).inc()
        self.tokens.labels(event.model, "prompt").inc(event.prompt_tokens)
        self.tokens.labels(event.model, "completion").inc(event.completion_tokens)
        if event.failovers:
            self.failovers.labels(event.model).inc(event.failovers)

    def observe_answer(self, profile: str, answer: Answer) -> None:
        if answer.trace.failures:
            self.failures.labels(profile).inc(len(answer.trace.failures))
        reason = answer.stopped_by
        if reason is not None:
            self.stopped.labels(profile, reason).inc()
        if answer.trace.vote is not None:
            self.vote_margin.labels(profile).observe(answer.trace.vote.margin)

    def observe_request(
        self, endpoint: str, profile: str, status: int, seconds: float, *, stream: bool
    ) -> None:
        self.requests.labels(endpoint, profile, str(status)).inc()
        self.latency.labels(endpoint, profile, str(stream).lower()).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
