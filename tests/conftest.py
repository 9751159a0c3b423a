"""Shared fixtures. Real-model fixtures pull from the offline catalog on first use."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import structlog
from typer.testing import CliRunner

SMALL_MODEL = "smollm2-135m-instruct"
EMBEDDER = "all-minilm-l6-v2"


def _pulled(name: str) -> str:
    from workers.catalog import is_pulled, pull

    if not is_pulled(name):
        pull(name, progress=False)
    return name


@pytest.fixture(scope="session")
def small_model_name() -> str:
    """The catalog's smallest real instruct model, pulled (fetched, verified, converted)."""
    return _pulled(SMALL_MODEL)


@pytest.fixture(scope="session")
def embedder_name() -> str:
    """The catalog's sentence embedder (MiniLM), pulled."""
    return _pulled(EMBEDDER)


@pytest.fixture(autouse=True)
def _isolated_logging() -> Iterator[None]:
    """Each test starts from, and leaves behind, the same global logging set-up (CLI
    commands reconfigure structlog and the root logger, e.g. to level warning)."""
    saved = structlog.get_config()
    handlers, level = logging.root.handlers[:], logging.root.level
    yield
    structlog.configure(**saved)
    logging.root.handlers[:], logging.root.level = handlers, level


@pytest.fixture
def cli_runner() -> CliRunner:
    return CliRunner()
