"""Building a declared step verifier (``workers.step_verifier_config``) from built workers."""

from __future__ import annotations

import pytest

from workers.scripted import ScriptedWorker, cycle_texts
from workers.step_verifier_config import (
    PooledStepVerifierConfig,
    TokenStepVerifierConfig,
    build_step_verifier,
)


def test_token_kind_on_a_worker_without_a_verifier_names_the_model_and_the_fix() -> None:
    """The worker's refusal (``token_step_verifier``) becomes a ValueError naming the model
    and saying how to attach a verifier."""
    workers = {"plain": ScriptedWorker("plain", cycle_texts(["x"]))}
    with pytest.raises(ValueError, match="model 'plain' to be a transformers model") as info:
        build_step_verifier(TokenStepVerifierConfig(model="plain"), workers)
    assert "verifier: {path: DIR}" in str(info.value)


def test_pooled_kind_needs_an_http_model() -> None:
    workers = {"plain": ScriptedWorker("plain", cycle_texts(["x"]))}
    with pytest.raises(ValueError, match="to be an openai model"):
        build_step_verifier(PooledStepVerifierConfig(model="plain"), workers)
    with pytest.raises(ValueError, match="not declared"):
        build_step_verifier(PooledStepVerifierConfig(model="nope"), workers)
