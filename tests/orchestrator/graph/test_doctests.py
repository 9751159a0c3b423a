"""The examples in the graph modules' docstrings stay true."""

from __future__ import annotations

import doctest
import importlib

import pytest


@pytest.mark.parametrize("name", ["segment", "normalize", "build", "clusters", "export"])
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(f"orchestrator.graph.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
