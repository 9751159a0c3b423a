"""The chunk VQ-VAE: round trips on a toy set, save/load, the quantiser, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from workers.latent import (
    ChunkVQVAE,
    VectorQuantizer,
    VQVAEConfig,
    VQVAETraining,
    reconstruction,
    train_vqvae,
)

TOY = VQVAEConfig(
    vocab_size=40, chunk_tokens=8, codebook_size=128, dim=32, layers=1, heads=2, restart_after=20
)


@pytest.fixture(scope="module")
def toy_chunks() -> torch.Tensor:
    """64 distinct random chunks of 8 tokens."""
    return torch.randint(2, 40, (64, 8), generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def trained(toy_chunks: torch.Tensor) -> ChunkVQVAE:
    vqvae = ChunkVQVAE(TOY, seed=0)
    steps = []
    report = train_vqvae(
        vqvae,
        toy_chunks,
        VQVAETraining(steps=300, batch_size=64, learning_rate=3e-3),
        on_step=lambda step, loss: steps.append(step),
    )
    assert steps == list(range(1, 301))
    assert report.steps == 300
    return vqvae


def test_round_trip_on_a_toy_set(trained: ChunkVQVAE, toy_chunks: torch.Tensor) -> None:
    """After a few hundred steps the 64 chunks get distinct codes and decode back."""
    result = reconstruction(trained, toy_chunks)
    assert result.token_accuracy >= 0.95
    assert result.chunk_accuracy >= 0.8
    assert result.codes_used >= 60
    codes = trained.encode(toy_chunks)
    assert codes.shape == (64,)
    assert (trained.decode(codes) == toy_chunks).float().mean() >= 0.95


def test_untrained_model_does_not_reconstruct(toy_chunks: torch.Tensor) -> None:
    """The round-trip test can fail: an untrained VQ-VAE gets next to nothing right."""
    assert reconstruction(ChunkVQVAE(TOY, seed=0), toy_chunks).token_accuracy < 0.2


def test_save_load_keeps_codes_and_decoding(
    trained: ChunkVQVAE, toy_chunks: torch.Tensor, tmp_path: Path
) -> None:
    """A saved VQ-VAE loads with its config, codebook and weights: same codes, same tokens."""
    loaded = ChunkVQVAE.load(trained.save(tmp_path / "vqvae"))
    assert loaded.config == TOY
    codes = trained.encode(toy_chunks)
    assert torch.equal(loaded.encode(toy_chunks), codes)
    assert torch.equal(loaded.decode(codes), trained.decode(codes))
    with pytest.raises(ValueError, match="not a saved ChunkVQVAE"):
        ChunkVQVAE.load(tmp_path)


def test_training_is_seeded(toy_chunks: torch.Tensor) -> None:
    """Same seed, data and settings: the same weights and codebook."""
    runs = []
    for _ in range(2):
        vqvae = ChunkVQVAE(TOY, seed=5)
        train_vqvae(vqvae, toy_chunks, VQVAETraining(steps=5, batch_size=16, seed=2))
        runs.append(vqvae.state_dict())
    for name, tensor in runs[0].items():
        assert torch.equal(tensor, runs[1][name]), name


def test_bad_input_is_refused(trained: ChunkVQVAE) -> None:
    """Wrong chunk width, out-of-vocabulary ids, out-of-range codes and bad settings."""
    with pytest.raises(ValueError, match=r"\[rows, 8\]"):
        trained.encode(torch.zeros(2, 7, dtype=torch.long))
    with pytest.raises(ValueError, match=r"0\.\.39"):
        trained.encode(torch.full((1, 8), 40))
    with pytest.raises(ValueError, match=r"0\.\.127"):
        trained.decode(torch.tensor([128]))
    with pytest.raises(ValueError, match="multiple of heads"):
        ChunkVQVAE(VQVAEConfig(vocab_size=10, dim=30, heads=4))
    with pytest.raises(ValueError, match="steps >= 0"):
        VQVAETraining(batch_size=0)


def test_dead_codes_restart_on_batch_vectors() -> None:
    """A code no vector chooses for ``restart_after`` steps moves onto a vector of the batch;
    used codes follow the EMA of their vectors."""
    quantizer = VectorQuantizer(4, 2, decay=0.5, restart_after=3).train()
    z = torch.tensor([[0.0, 0.0], [0.1, 0.0], [10.0, 10.0], [10.1, 10.0]])
    torch.manual_seed(0)
    for _ in range(5):
        quantizer(z)
    codebook = quantizer.codebook
    # every code sits near one of the two clusters, and both clusters have a code
    near_origin = codebook.norm(dim=-1) < 1
    near_far = (codebook - torch.tensor([10.05, 10.0])).norm(dim=-1) < 1
    assert bool((near_origin | near_far).all())
    assert bool(near_origin.any())
    assert bool(near_far.any())
    out = quantizer.eval()(z)
    assert out.vectors.shape == z.shape
    assert out.codes.shape == (4,)
    assert float(out.loss) < 0.01
