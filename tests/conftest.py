"""Shared fixtures. Real-model fixtures pull from the offline catalog on first use."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

SMALL_MODEL = "smollm2-135m-instruct"


@pytest.fixture(scope="session")
def small_model_name() -> Iterator[str]:
    """The catalog's smallest real instruct model, pulled (installed, verified, converted)."""
    from workers.catalog import is_pulled, pull

    if not is_pulled(SMALL_MODEL):
        pull(SMALL_MODEL, progress=False)
    return SMALL_MODEL
