"""Fixtures shared by the vLLM engine tests (CPU and GPU)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="module")
def verifier_dir(small_model_name: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A head-only verifier on the served model with a fixed, small, nonzero random head."""
    from transformers import AutoModelForCausalLM

    from workers.catalog import resolve
    from workers.verifier import TokenVerifier

    lm = AutoModelForCausalLM.from_pretrained(resolve(small_model_name), dtype=torch.float32)
    verifier = TokenVerifier.from_generator(lm)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        verifier.head.weight.copy_(torch.randn(verifier.head.weight.shape, generator=generator))
        verifier.head.weight.mul_(0.05)
    return verifier.save(tmp_path_factory.mktemp("verifier"))
