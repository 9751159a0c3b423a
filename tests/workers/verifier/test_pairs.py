"""The packed training forward against naive scoring, and a Bradley-Terry step."""

from __future__ import annotations

import pytest
import torch

from tests.workers.verifier.helpers import naive_score, random_verifier
from workers.verifier import Triplet, bradley_terry_loss, pair_scores

SEQUENCES = [[3, 4, 5, 6, 7, 8], [9, 10], [11, 12, 13]]
TRIPLETS = [
    [Triplet(1, 20, 21), Triplet(4, 22, 23), Triplet(2, 24, 25)],
    [Triplet(2, 26, 27)],
    [],  # a sequence without triplets contributes nothing
]


def test_packed_pairs_equal_naive_scores() -> None:
    """Every triplet's two scores equal scoring the token right after x_<t alone."""
    verifier = random_verifier()
    with torch.no_grad():
        pos, neg = pair_scores(verifier, SEQUENCES, TRIPLETS)
    flat = [(s, t) for s, row in zip(SEQUENCES, TRIPLETS, strict=True) for t in row]
    assert pos.shape == neg.shape == (len(flat),)
    for i, (sequence, triplet) in enumerate(flat):
        prefix = sequence[: triplet.position]
        assert float(pos[i]) == pytest.approx(
            naive_score(verifier, prefix, triplet.positive), abs=1e-5
        )
        assert float(neg[i]) == pytest.approx(
            naive_score(verifier, prefix, triplet.negative), abs=1e-5
        )


def test_one_step_lowers_the_loss() -> None:
    """Gradients reach the trained parameters and one SGD step lowers the BT loss."""
    verifier = random_verifier(trainable="last_layers")
    optimizer = torch.optim.SGD([p for p in verifier.parameters() if p.requires_grad], lr=0.05)
    before = bradley_terry_loss(*pair_scores(verifier, SEQUENCES, TRIPLETS))
    before.backward()
    assert verifier.head.weight.grad is not None
    assert verifier.backbone.embed_tokens.weight.grad is None  # frozen
    optimizer.step()
    with torch.no_grad():
        after = bradley_terry_loss(*pair_scores(verifier, SEQUENCES, TRIPLETS))
    assert float(after) < float(before.detach())


def test_pair_scores_edge_cases() -> None:
    """No triplets gives empty tensors; a position outside the sequence is refused."""
    verifier = random_verifier()
    pos, neg = pair_scores(verifier, [[3, 4]], [[]])
    assert pos.shape == neg.shape == (0,)
    with pytest.raises(ValueError, match="outside"):
        pair_scores(verifier, [[3, 4]], [[Triplet(3, 5, 6)]])
