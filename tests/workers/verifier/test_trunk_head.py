"""The shared-trunk head: its scores, guidance step, save/load and training."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.workers.tiny_model import tiny_model
from tests.workers.verifier.trunk_helpers import naive_trunk_score, random_head
from workers.base import Guidance
from workers.guidance_stats import GuidanceStats
from workers.verifier import (
    TokenVerifier,
    TrainingExample,
    TrainSettings,
    Triplet,
    TrunkHead,
    TrunkStepVerifier,
    guide_trunk_rows,
    load_verifier,
    saved_verifier_kind,
    train_trunk_head,
)
from workers.verifier.scoring import plausible_candidates
from workers.verifier.trunk_scoring import last_hidden_states

PREFIXES = ([5, 9, 3], [7, 7, 2, 11, 4, 30], [12])


def _states(model: torch.nn.Module, prefixes: list[list[int]]) -> torch.Tensor:
    """Each prefix's last final-norm hidden state, one plain forward each."""
    return torch.cat([last_hidden_states(model, torch.tensor([p]))[:, -1] for p in prefixes])


def test_candidate_scores_equal_a_naive_per_candidate_computation() -> None:
    """(E_C U)(Vᵀ h) equals e_xᵀ U Vᵀ h computed candidate by candidate."""
    model = tiny_model()
    head = random_head(model)
    candidates = torch.tensor([[3, 8, 20], [1, 2, 40], [17, 17, 5]])
    with torch.no_grad():
        scores = head.score_candidates(
            _states(model, list(PREFIXES)), model.get_output_embeddings().weight, candidates
        )
    for row, prefix in enumerate(PREFIXES):
        for j, candidate in enumerate(candidates[row].tolist()):
            expected = naive_trunk_score(head, model, prefix, candidate)
            assert scores[row, j].item() == pytest.approx(expected, abs=1e-5)


def test_an_untrained_head_scores_zero_and_a_seeded_one_is_reproducible() -> None:
    """U starts at zero (every score 0); V is drawn from the seed."""
    model = tiny_model()
    head = TrunkHead.from_generator(model, rank=3)
    assert head.is_untrained()
    with torch.no_grad():
        scores = head.score_candidates(
            _states(model, [[4, 5]]), model.get_output_embeddings().weight, torch.tensor([[1, 2]])
        )
    assert torch.equal(scores, torch.zeros(1, 2))
    assert torch.equal(TrunkHead.from_generator(model, rank=3).V, head.V)


def _a_guided_step(seed: int) -> tuple[Any, TrunkHead, torch.Tensor, torch.Tensor]:
    """The tiny model, a random head, the hidden states of ``PREFIXES`` and seeded logits."""
    model = tiny_model()
    head = random_head(model)
    hidden = _states(model, list(PREFIXES))
    torch.manual_seed(seed)
    return model, head, hidden, torch.randn(3, model.config.vocab_size) * 3


def test_guidance_step_adds_beta_times_the_score_on_the_plausible_set_only() -> None:
    """z* = z + beta * s on V_t, -inf elsewhere; beta = 0 rows untouched; stats counted."""
    model, head, hidden, logits = _a_guided_step(seed=1)
    settings = [Guidance(beta=0.5, alpha=0.2, top_k=4), Guidance(beta=0.0), Guidance(beta=2.0)]
    stats = GuidanceStats()
    with torch.no_grad():
        out = guide_trunk_rows(
            logits, hidden, settings, head, model.get_output_embeddings().weight, stats
        )
    assert torch.equal(out[1], logits[1])
    for row in (0, 2):
        g = settings[row]
        allowed = plausible_candidates(logits[row : row + 1], g.alpha, g.top_k).row(0)
        for token in range(logits.shape[1]):
            if token in allowed:
                bonus = naive_trunk_score(head, model, PREFIXES[row], token)
                expected = logits[row, token].item() + g.beta * bonus
                assert out[row, token].item() == pytest.approx(expected, abs=1e-4)
            else:
                assert out[row, token].item() == float("-inf")
    assert stats.verified_rows + stats.skipped_rows == 2
    assert stats.seconds > 0


def test_a_batch_of_alike_rows_is_guided_as_each_row_alone() -> None:
    """Every row with one setting (the whole-batch path) gives what each row gets alone."""
    model, head, hidden, logits = _a_guided_step(seed=2)
    alike = [Guidance(beta=0.5, alpha=0.05, top_k=4)] * 3
    embeddings = model.get_output_embeddings().weight
    batch_stats, row_stats = GuidanceStats(), GuidanceStats()
    with torch.no_grad():
        batch = guide_trunk_rows(logits, hidden, alike, head, embeddings, batch_stats)
        rows = [
            guide_trunk_rows(
                logits[i : i + 1], hidden[i : i + 1], alike[:1], head, embeddings, row_stats
            )
            for i in range(3)
        ]
    assert torch.allclose(batch, torch.cat(rows), atol=1e-6)
    assert not torch.equal(batch, logits)
    batch_stats.seconds = row_stats.seconds = 0.0
    assert batch_stats == row_stats


def test_step_scores_are_the_mean_token_scores_of_each_step() -> None:
    """A step's score is the mean over its tokens of e_{x_t}ᵀ U Vᵀ h_{t-1}."""
    from tests.workers.tiny_model import CharTokenizer

    model, tokenizer = tiny_model(), CharTokenizer()
    head = random_head(model)
    verifier = TrunkStepVerifier(head, model, tokenizer, separator=".")
    scores = verifier.score_steps_now("ab", ["cd", "e f"])
    ids = tokenizer.encode("ab") + tokenizer.encode("cd.") + tokenizer.encode("e f.")
    naive = [naive_trunk_score(head, model, ids[:t], ids[t]) for t in range(len(ids))[2:]]
    assert scores[0] == pytest.approx(sum(naive[:3]) / 3, abs=1e-5)
    assert scores[1] == pytest.approx(sum(naive[3:]) / 4, abs=1e-5)


def test_save_load_round_trip_and_the_fingerprint_refuses_another_base(tmp_path: Path) -> None:
    """A loaded head scores exactly as saved; another generator's weights are refused."""
    model = tiny_model(0)
    head = random_head(model, rank=5)
    head.save(tmp_path, generator=model)
    meta = json.loads((tmp_path / "verifier.json").read_text())
    assert meta["kind"] == "trunk_head"
    assert meta["rank"] == 5
    assert meta["base_sha256"]
    assert saved_verifier_kind(tmp_path) == "trunk_head"
    loaded = load_verifier(tmp_path, model)
    assert isinstance(loaded, TrunkHead)
    assert torch.equal(loaded.U, head.U)
    assert torch.equal(loaded.V, head.V)
    with pytest.raises(ValueError, match="sha256 mismatch"):
        TrunkHead.load(tmp_path, tiny_model(1))
    assert TrunkHead.load(tmp_path, tiny_model(1), verify_base=False).rank == 5
    with pytest.raises(ValueError, match="does not hold a saved token verifier"):
        TokenVerifier.load(tmp_path, model)


def test_a_float16_copy_of_the_base_has_the_same_fingerprint_as_float32(tmp_path: Path) -> None:
    """Weights are hashed as float32, so a half-precision load of float16-exact weights
    matches (the fingerprint names the checkpoint, not the dtype it was loaded in)."""
    model = tiny_model(0).half().float()
    random_head(model).save(tmp_path, generator=model)
    TrunkHead.load(tmp_path, model.half())


def test_kind_dispatch_reads_llm2_directories_and_rejects_others(tmp_path: Path) -> None:
    """An LLM2 save is kind llm2 and loads as a TokenVerifier; a stray directory is refused."""
    model = tiny_model()
    TokenVerifier.from_generator(model).save(tmp_path / "llm2")
    assert saved_verifier_kind(tmp_path / "llm2") == "llm2"
    assert isinstance(load_verifier(tmp_path / "llm2", model), TokenVerifier)
    with pytest.raises(ValueError, match="no saved verifier"):
        saved_verifier_kind(tmp_path)
    (tmp_path / "verifier.json").write_text('{"format": "other"}')
    with pytest.raises(ValueError, match="unknown verifier format"):
        saved_verifier_kind(tmp_path)


def test_training_on_toy_triplets_ranks_good_over_bad() -> None:
    """Bradley-Terry on a frozen trunk: after training, s(good) > s(bad) on held-out items
    whose rule (after 'a' prefer 'b' to 'c') the training items share; the trunk is unchanged."""
    model = tiny_model()
    before = {n: p.clone() for n, p in model.named_parameters()}
    a, b, c = 2, 3, 4  # 'a', 'b', 'c' in the character vocabulary
    examples = []
    for i in range(12):
        torch.manual_seed(i)
        noise = [int(t) for t in torch.randint(10, 40, (6,))]
        sequence = (*noise, a, b, *noise[:2], a, b)
        triplets = (Triplet(7, b, c), Triplet(11, b, c))
        examples.append(TrainingExample(f"item{i}", sequence, triplets))
    head = TrunkHead.from_generator(model, rank=4)
    settings = TrainSettings(epochs=30, batch_size=4, head_lr=0.05, val_fraction=0.0)
    metrics = train_trunk_head(head, model, examples[:9], examples[9:], settings)
    assert metrics.epochs[0].val_accuracy == 0.5  # untrained: all ties
    assert metrics.epochs[-1].val_accuracy == 1.0
    assert metrics.epochs[-1].val_loss is not None
    assert metrics.epochs[-1].val_loss < 0.3
    assert metrics.kind == "trunk_head"
    assert metrics.rank == 4
    for name, parameter in model.named_parameters():
        assert torch.equal(parameter, before[name]), name


def test_training_refuses_a_triplet_without_prefix() -> None:
    """A triplet at position 0 has no state to score in: a clear error, not a silent wrap."""
    model = tiny_model()
    example = TrainingExample("x", (5, 6, 7), (Triplet(0, 5, 6),))
    with pytest.raises(ValueError, match="at least one token of prefix"):
        train_trunk_head(TrunkHead.from_generator(model), model, [example], [], TrainSettings())
