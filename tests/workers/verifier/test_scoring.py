"""The verifier's pure tensor functions on hand-made tensors."""

from __future__ import annotations

import math

import pytest
import torch

from workers.verifier import (
    additive_mask,
    bradley_terry_loss,
    candidate_attention_mask,
    guided_logits,
    plausible_candidates,
)

NEG = float("-inf")


def test_candidate_attention_mask_layout() -> None:
    """Prefix is causal; each candidate sees the prefix and itself only."""
    mask = candidate_attention_mask(2, 3, torch.float32)
    assert mask.shape == (1, 1, 5, 5)
    visible = (mask[0, 0] == 0).int().tolist()
    assert visible == [
        [1, 0, 0, 0, 0],
        [1, 1, 0, 0, 0],
        [1, 1, 1, 0, 0],
        [1, 1, 0, 1, 0],
        [1, 1, 0, 0, 1],
    ]
    assert float(mask.min()) == torch.finfo(torch.float32).min


def test_additive_mask_dtype_and_checks() -> None:
    """Hidden entries get the dtype's minimum, not -inf; only boolean 3-D input is taken."""
    mask = additive_mask(torch.tensor([[[True, False]]]), torch.bfloat16)
    assert mask.dtype == torch.bfloat16
    assert mask.shape == (1, 1, 1, 2)
    assert mask[0, 0, 0].tolist() == [0.0, torch.finfo(torch.bfloat16).min]
    with pytest.raises(ValueError, match="boolean"):
        additive_mask(torch.ones(1, 2, 2), torch.float32)


def _logits(*probs: float) -> torch.Tensor:
    return torch.log(torch.tensor([probs]))


def test_alpha_rule_keeps_tokens_within_alpha_of_the_best() -> None:
    """p = [.5, .3, .04, .16]: alpha .3 keeps p >= .15 (ids 0, 3, 1 in probability order)."""
    candidates = plausible_candidates(_logits(0.5, 0.3, 0.04, 0.16), alpha=0.3, top_k=0)
    assert candidates.row(0) == [0, 1, 3]
    assert candidates.ids.shape == (1, 3)
    assert candidates.single.tolist() == [False]


def test_alpha_boundary_is_inclusive() -> None:
    """p(v) = alpha * max p exactly is kept (compared in log space)."""
    logits = torch.tensor([[0.0, math.log(0.25), math.log(0.2)]])
    assert plausible_candidates(logits, alpha=0.25, top_k=0).row(0) == [0, 1]


def test_top_k_caps_and_alpha_zero_is_plain_top_k() -> None:
    """top_k caps V_t; alpha = 0 lets every finite token pass, i.e. top-k."""
    logits = _logits(0.3, 0.25, 0.2, 0.15, 0.1)
    assert plausible_candidates(logits, alpha=0.1, top_k=2).row(0) == [0, 1]
    assert plausible_candidates(logits, alpha=0.0, top_k=3).row(0) == [0, 1, 2]
    with pytest.raises(ValueError, match="top_k"):
        plausible_candidates(logits, alpha=0.0, top_k=0)
    with pytest.raises(ValueError, match="alpha"):
        plausible_candidates(logits, alpha=1.5, top_k=0)


def test_rows_are_padded_and_single_rows_flagged() -> None:
    """Rows of different |V_t| share one padded tensor; |V_t| = 1 is flagged; -inf never passes."""
    logits = torch.tensor([[5.0, 0.0, 4.9, NEG], [0.0, 10.0, 0.0, 0.0], [0.0, 0.0, NEG, NEG]])
    candidates = plausible_candidates(logits, alpha=0.5, top_k=0)
    assert candidates.ids.shape == (3, 2)
    assert candidates.row(0) == [0, 2]
    assert candidates.row(1) == [1]
    assert sorted(candidates.row(2)) == [0, 1]
    assert candidates.valid.tolist() == [[True, True], [True, False], [True, True]]
    assert candidates.ids[1, 1] == 0  # padding
    assert candidates.single.tolist() == [False, True, False]
    top = plausible_candidates(logits, alpha=0.0, top_k=4)
    assert 3 not in top.row(0)
    assert top.row(2) == [0, 1] or top.row(2) == [1, 0]


@pytest.mark.parametrize(("alpha", "top_k"), [(0.1, 10), (0.01, 3), (0.0, 5), (0.5, 1)])
def test_capped_sets_equal_the_rule_over_the_whole_vocabulary(alpha: float, top_k: int) -> None:
    """With a cap only the top_k most probable are tested; V_t is still the rule's set."""
    torch.manual_seed(0)
    logits = torch.randn(6, 50) * 2
    logits[1, 5:] = NEG  # fewer finite tokens than the cap
    logits[2, :] = NEG
    logits[2, 7] = 0.0  # one finite token
    logits[3, 10:20] += 8.0  # many plausible tokens
    found = plausible_candidates(logits, alpha, top_k)
    for i, row in enumerate(logits.tolist()):
        best = max(row)
        order = sorted(range(len(row)), key=lambda v: -row[v])
        passing = [
            v
            for v in order
            if math.isfinite(row[v]) and (alpha == 0.0 or row[v] - best >= math.log(alpha))
        ]
        assert found.row(i) == (passing or order[:1])[:top_k]
    assert found.single.tolist() == [len(found.row(i)) == 1 for i in range(6)]


def test_guided_logits_adds_beta_scores_and_masks_the_rest() -> None:
    """z* = z + beta * s on V_t, -inf elsewhere; invalid (padding) slots are ignored."""
    logits = torch.tensor([[1.0, 2.0, 3.0, 4.0], [0.5, 0.5, 0.5, 0.5]])
    ids = torch.tensor([[3, 1], [2, 0]])
    scores = torch.tensor([[1.0, -2.0], [4.0, 100.0]])
    valid = torch.tensor([[True, True], [True, False]])
    guided = guided_logits(logits, ids, scores, beta=0.5, valid=valid)
    assert guided.tolist() == [[NEG, 1.0, NEG, 4.5], [NEG, NEG, 2.5, NEG]]
    assert guided_logits(logits, ids, scores, beta=0.0)[0].tolist() == [NEG, 2.0, NEG, 4.0]
    padding_on_a_candidate = torch.tensor([[0, 0]])  # padding (id 0) is also a candidate
    guided = guided_logits(logits[:1], padding_on_a_candidate, scores[:1], 0.5, valid[1:])
    assert guided.tolist() == [[1.5, NEG, NEG, NEG]]


def test_bradley_terry_loss_by_hand() -> None:
    """-mean log sigmoid(s+ - s-) on margins 0 and log 3: (log 2 + log(4/3)) / 2."""
    pos = torch.tensor([1.0, math.log(3.0)])
    neg = torch.tensor([1.0, 0.0])
    expected = (math.log(2.0) + math.log(4.0 / 3.0)) / 2
    assert float(bradley_terry_loss(pos, neg)) == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="shape"):
        bradley_terry_loss(pos, neg[:1])
