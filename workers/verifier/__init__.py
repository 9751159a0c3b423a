"""The LLM2 token verifier: a scalar-head copy of the generator that guides decoding.

``TokenVerifier`` is the network, ``score_candidates`` scores each row's candidate next
tokens in one cached forward pass, ``pair_scores`` + ``bradley_terry_loss`` train it,
``guide_rows`` is one guided decoding step and ``VerifierLogitsProcessor`` runs it inside
``workers.decoding.decode_batch``. ``train_verifier`` trains it on triplets from
``system2.pipelines.verifier_triplets`` (imported on its own: it reads data sets and answers through
``orchestrator``), and the step verifiers of ``steps`` score whole reasoning steps.

The second kind, ``TrunkHead``, is a low-rank head on the generator's own hidden states
(s(x) = e_xᵀ U Vᵀ h_t, no extra transformer pass): ``guide_trunk_rows``/``TrunkGuidance``
guide with it, ``TrunkStepVerifier`` scores steps, ``train_trunk_head`` trains it on the same
triplets, and ``load_verifier`` rebuilds a saved verifier of either kind.
"""

from __future__ import annotations

from workers.verifier.candidates import VerifierCache, score_candidates
from workers.verifier.guidance import (
    CandidateScorer,
    RowGuidance,
    VerifierScorer,
    guide_rows,
)
from workers.verifier.network import ATTENTION_IMPLEMENTATIONS, TokenVerifier, TrainableMode
from workers.verifier.pairs import Triplet, pair_scores
from workers.verifier.processor import VerifierLogitsProcessor
from workers.verifier.scoring import (
    CandidateSet,
    additive_mask,
    bradley_terry_loss,
    candidate_attention_mask,
    guided_logits,
    plausible_candidates,
)
from workers.verifier.steps import (
    PooledStepVerifier,
    PRMReading,
    PRMStepVerifier,
    TokenStepVerifier,
    step_spans,
)
from workers.verifier.train import (
    EpochMetrics,
    TrainingExample,
    TrainingMetrics,
    TrainSettings,
    evaluate_pairs,
    examples_from_records,
    split_by_item,
    train_verifier,
    write_metrics,
)
from workers.verifier.trunk_head import TrunkHead, base_fingerprint
from workers.verifier.trunk_kinds import (
    VERIFIER_KINDS,
    VerifierKind,
    load_verifier,
    saved_verifier_kind,
)
from workers.verifier.trunk_scoring import TrunkGuidance, TrunkStepVerifier, guide_trunk_rows
from workers.verifier.trunk_train import (
    TrunkTrainingMetrics,
    evaluate_trunk_pairs,
    train_trunk_head,
    trunk_features,
)

__all__ = [
    "ATTENTION_IMPLEMENTATIONS",
    "VERIFIER_KINDS",
    "CandidateScorer",
    "CandidateSet",
    "EpochMetrics",
    "PRMReading",
    "PRMStepVerifier",
    "PooledStepVerifier",
    "RowGuidance",
    "TokenStepVerifier",
    "TokenVerifier",
    "TrainSettings",
    "TrainableMode",
    "TrainingExample",
    "TrainingMetrics",
    "Triplet",
    "TrunkGuidance",
    "TrunkHead",
    "TrunkStepVerifier",
    "TrunkTrainingMetrics",
    "VerifierCache",
    "VerifierKind",
    "VerifierLogitsProcessor",
    "VerifierScorer",
    "additive_mask",
    "base_fingerprint",
    "bradley_terry_loss",
    "candidate_attention_mask",
    "evaluate_pairs",
    "evaluate_trunk_pairs",
    "examples_from_records",
    "guide_rows",
    "guide_trunk_rows",
    "guided_logits",
    "load_verifier",
    "pair_scores",
    "plausible_candidates",
    "saved_verifier_kind",
    "score_candidates",
    "split_by_item",
    "step_spans",
    "train_trunk_head",
    "train_verifier",
    "trunk_features",
    "write_metrics",
]
