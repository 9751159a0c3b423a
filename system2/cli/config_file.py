"""The CLI's YAML config: the built-in default, and loading one the way every command does
(logging set up from it first; a bad file stops with exit code 2)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from system2.cli.output import fail
from system2.config import ConfigError, System2Config, load_config
from system2.logging import configure_logging

__all__ = ["default_config_path", "load_cli_config"]


def default_config_path() -> Path:
    """The built-in config: Qwen2.5-Coder-0.5B-Instruct, self-consistency over 5 samples."""
    return Path(str(resources.files("system2") / "configs" / "default.yaml"))


def load_cli_config(path: Path | None) -> System2Config:
    """Read the config at ``path`` (None: the built-in one) and set up logging from it
    (before anything else logs)."""
    try:
        cfg = load_config(path or default_config_path())
    except ConfigError as exc:
        raise fail(exc) from None
    configure_logging(cfg.logging.format, cfg.logging.level)
    return cfg
