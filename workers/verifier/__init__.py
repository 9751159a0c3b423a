"""The LLM2 token verifier: a scalar-head copy of the generator that guides decoding.

``TokenVerifier`` is the network, ``score_candidates`` scores each row's candidate next
tokens in one cached forward pass, ``pair_scores`` + ``bradley_terry_loss`` train it, and
``VerifierLogitsProcessor`` plugs it into ``workers.decoding.decode_batch``.
"""

from __future__ import annotations

from workers.verifier.candidates import VerifierCache, score_candidates
from workers.verifier.network import ATTENTION_IMPLEMENTATIONS, TokenVerifier, TrainableMode
from workers.verifier.pairs import Triplet, pair_scores
from workers.verifier.processor import GuidanceStats, VerifierLogitsProcessor
from workers.verifier.scoring import (
    CandidateSet,
    additive_mask,
    bradley_terry_loss,
    candidate_attention_mask,
    guided_logits,
    plausible_candidates,
)

__all__ = [
    "ATTENTION_IMPLEMENTATIONS",
    "CandidateSet",
    "GuidanceStats",
    "TokenVerifier",
    "TrainableMode",
    "Triplet",
    "VerifierCache",
    "VerifierLogitsProcessor",
    "additive_mask",
    "bradley_terry_loss",
    "candidate_attention_mask",
    "guided_logits",
    "pair_scores",
    "plausible_candidates",
    "score_candidates",
]
