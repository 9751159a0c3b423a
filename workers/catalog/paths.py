"""Where the catalog keeps joined sources and converted models."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["MANIFEST_NAME", "cache_dir", "gguf_path", "model_dir", "models_root"]

MANIFEST_NAME = "system2-manifest.json"


def cache_dir() -> Path:
    """``$SYSTEM2_CACHE``, or ``~/.cache/system2``."""
    configured = os.environ.get("SYSTEM2_CACHE")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "system2"


def models_root() -> Path:
    return cache_dir() / "models"


def model_dir(name: str) -> Path:
    """The converted (ready to load) directory of catalog model ``name``."""
    return models_root() / name


def gguf_path(name: str) -> Path:
    """Where the joined GGUF of ``name`` is written (and kept with ``keep_gguf``)."""
    return cache_dir() / "gguf" / f"{name}.gguf"
