"""The runnable ``Example:`` blocks in docstrings stay true."""

from __future__ import annotations

import doctest
import importlib

import pytest
import structlog

MODULES = [
    "orchestrator.extraction.numbers",
    "orchestrator.extraction.math_answer",
    "orchestrator.extraction.by_task",
    "orchestrator.aggregation.voting",
    "orchestrator.aggregation.verifier_vote",
    "orchestrator.rerank.codersa",
    "orchestrator.rerank",
    "orchestrator.rerank.task",
    "orchestrator.rerank.registry",
    "orchestrator.orchestrator",
    "orchestrator.budget",
    "system2.server.app",
    "system2.server.admission",
    "policies.constant",
    "policies.selectllm.rules",
    "policies.selectllm.policy",
    "policies.selectllm.arms",
    "policies.selectllm.compute_aware",
    "policies.selectllm.curve",
    "workers.scripted",
    "system2.pipelines.latent.replacement",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    """Every example in the module's docstrings runs and prints what it shows."""
    with structlog.testing.capture_logs():  # log lines are not part of the examples' output
        result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
