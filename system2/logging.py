"""structlog set-up: console or JSON lines, with the query id bound per query."""

from __future__ import annotations

import logging
import sys
from typing import Literal, TextIO

import structlog

__all__ = ["configure_logging"]


class _StderrHandler(logging.StreamHandler[TextIO]):
    """A stdlib handler writing to whatever sys.stderr is when a record is emitted."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


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
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if not isinstance(h, _StderrHandler)]
    root.addHandler(_StderrHandler())
    root.setLevel(max(numeric, logging.WARNING))
