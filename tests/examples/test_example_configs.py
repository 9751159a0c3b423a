"""Every example YAML (and the built-in default) loads and validates, so none can rot."""

from __future__ import annotations

from pathlib import Path

import pytest

from system2.cli.config_file import default_config_path
from system2.config import load_config

EXAMPLES = Path(__file__).parents[2] / "examples"
CONFIGS = [*sorted(EXAMPLES.rglob("*.yaml")), default_config_path()]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_example_config_loads(path: Path) -> None:
    """The file parses against the schema and its policy names declared models."""
    config = load_config(path)
    assert config.models
    assert set(config.policy.models) <= set(config.models)


def test_there_are_examples() -> None:
    """The examples folder holds at least the math agent's config."""
    assert any(p.name == "math_agent.yaml" for p in CONFIGS)
