"""structlog set-up: console or JSON lines, with the query id bound per query."""

from __future__ import annotations

import logging
import sys
from typing import Literal

import structlog

__all__ = ["configure_logging"]


def _stderr_logger(*args: object) -> structlog.PrintLogger:
    # Looks sys.stderr up at each call: a stream captured once goes stale when the stream
    # is swapped (test runners, embedding applications) and may be closed by then.
    return structlog.PrintLogger(sys.stderr)


def configure_logging(format: Literal["console", "json"] = "console", level: str = "info") -> None:
    """Route structlog (and stdlib logging) to stderr in the chosen format."""
    numeric = getattr(logging, level.upper())
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if format == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=max(numeric, logging.WARNING), stream=sys.stderr)
