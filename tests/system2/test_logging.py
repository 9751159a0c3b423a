"""Log configuration: JSON lines with the query id, written to the current stderr."""

from __future__ import annotations

import io
import json
import sys

import pytest
import structlog

from system2.logging import configure_logging


def test_json_logs_go_to_the_stderr_of_the_moment(monkeypatch: pytest.MonkeyPatch) -> None:
    """After configuring, a swapped-in stderr receives JSON events with bound context."""
    configure_logging("json", "info")
    first, second = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    with structlog.contextvars.bound_contextvars(query_id="q-1"):
        structlog.get_logger("t").info("hello", n=1)
    monkeypatch.setattr(sys, "stderr", second)
    structlog.get_logger("t").info("again")
    event = json.loads(first.getvalue())
    assert event["event"] == "hello"
    assert event["query_id"] == "q-1"
    assert event["n"] == 1
    assert json.loads(second.getvalue())["event"] == "again"


def test_level_filters_lower_events(monkeypatch: pytest.MonkeyPatch) -> None:
    """Events below the configured level are dropped."""
    configure_logging("json", "warning")
    out = io.StringIO()
    monkeypatch.setattr(sys, "stderr", out)
    structlog.get_logger("t").info("quiet")
    structlog.get_logger("t").warning("loud")
    assert [json.loads(line)["event"] for line in out.getvalue().splitlines()] == ["loud"]
