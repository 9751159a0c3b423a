"""Building, freezing, saving and loading the token verifier."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from tests.workers.tiny_model import tiny_model
from tests.workers.verifier.helpers import random_verifier
from workers.verifier import TokenVerifier, TrainableMode, VerifierCache, score_candidates

PREFIXES = [[3, 4, 5], [6, 7]]
CANDIDATES = [[8, 9, 10], [11, 12]]


def _trainable(verifier: TokenVerifier) -> set[str]:
    return {n for n, p in verifier.named_parameters() if p.requires_grad}


def test_from_generator_copies_weights_and_starts_neutral() -> None:
    """The backbone is a copy (the generator is untouched); the head starts at zero."""
    generator = tiny_model()
    verifier = TokenVerifier.from_generator(generator)
    assert not verifier.training
    assert torch.equal(verifier.head.weight, torch.zeros(1, 32))
    embed = verifier.backbone.embed_tokens.weight
    assert torch.equal(embed, generator.model.embed_tokens.weight)
    assert embed.data_ptr() != generator.model.embed_tokens.weight.data_ptr()
    assert generator.config._attn_implementation == "sdpa"
    eager = TokenVerifier.from_generator(generator, attn_implementation="eager")
    assert eager.backbone.config._attn_implementation == "eager"
    assert generator.config._attn_implementation == "sdpa"
    with pytest.raises(ValueError, match="attn_implementation"):
        TokenVerifier.from_generator(generator, attn_implementation="flash_attention_2")


def test_trainable_modes_set_requires_grad() -> None:
    """head: head only; last_layers: head + last N layers + final norm; full: everything."""
    generator = tiny_model()
    head = TokenVerifier.from_generator(generator, trainable="head")
    assert _trainable(head) == {"head.weight"}
    last = TokenVerifier.from_generator(generator, trainable="last_layers", trainable_layers=1)
    names = _trainable(last)
    assert "head.weight" in names
    assert "backbone.norm.weight" in names
    assert any(n.startswith("backbone.layers.1.") for n in names)
    assert not any(n.startswith(("backbone.layers.0.", "backbone.embed_tokens")) for n in names)
    assert names == set(last.trained_parameter_names())
    full = TokenVerifier.from_generator(generator, trainable="full")
    assert _trainable(full) == {n for n, _ in full.named_parameters()}
    with pytest.raises(ValueError, match="trainable_layers"):
        TokenVerifier.from_generator(generator, trainable="last_layers", trainable_layers=3)


@pytest.mark.skipif(importlib.util.find_spec("peft") is not None, reason="peft is installed")
def test_lora_without_peft_names_the_package() -> None:
    """trainable='lora' fails clearly when peft is missing."""
    with pytest.raises(ImportError, match="peft"):
        TokenVerifier.from_generator(tiny_model(), trainable="lora")


@pytest.mark.parametrize("mode", ["head", "last_layers", "full"])
def test_save_load_round_trips_scores(tmp_path: Path, mode: TrainableMode) -> None:
    """Saved then loaded onto a fresh base generator, the verifier scores identically."""
    verifier = random_verifier(trainable=mode)
    with torch.no_grad():  # stand-in for training: move every trained weight
        for name, parameter in verifier.named_parameters():
            if parameter.requires_grad and name != "head.weight":
                parameter.add_(0.01)
    verifier.save(tmp_path / "v")
    meta = json.loads((tmp_path / "v" / "verifier.json").read_text())
    assert meta["trainable"] == mode
    assert meta["tensors"] == sorted(verifier.trained_parameter_names())
    assert (meta["frozen_sha256"] is None) == (mode == "full")  # nothing frozen to check
    loaded = TokenVerifier.load(tmp_path / "v", tiny_model())
    expected = score_candidates(verifier, PREFIXES, CANDIDATES, VerifierCache())
    assert torch.equal(score_candidates(loaded, PREFIXES, CANDIDATES, VerifierCache()), expected)
    assert _trainable(loaded) == _trainable(verifier)


def test_load_refuses_a_different_base(tmp_path: Path) -> None:
    """The frozen-weight sha256 catches a different base; verify_base=False skips the check."""
    random_verifier(trainable="last_layers").save(tmp_path / "v")
    with pytest.raises(ValueError, match="sha256"):
        TokenVerifier.load(tmp_path / "v", tiny_model(seed=1))
    TokenVerifier.load(tmp_path / "v", tiny_model(seed=1), verify_base=False)
    random_verifier().save(tmp_path / "plain", fingerprint=False)
    meta = json.loads((tmp_path / "plain" / "verifier.json").read_text())
    assert meta["frozen_sha256"] is None
