"""The LLM2 token verifier: a scalar-head copy of the generator that guides decoding.

``TokenVerifier`` is the network, ``score_candidates`` scores each row's candidate next
tokens in one cached forward pass, ``pair_scores`` + ``bradley_terry_loss`` train it,
``guide_rows`` is one guided decoding step and ``VerifierLogitsProcessor`` runs it inside
``workers.decoding.decode_batch``. ``train_verifier`` trains it on triplets from
``system2.pipelines.verifier_triplets`` (imported on its own: it reads data sets and answers through
``orchestrator``), and the step verifiers of ``steps`` score whole reasoning steps.
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

__all__ = [
    "ATTENTION_IMPLEMENTATIONS",
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
    "VerifierCache",
    "VerifierLogitsProcessor",
    "VerifierScorer",
    "additive_mask",
    "bradley_terry_loss",
    "candidate_attention_mask",
    "evaluate_pairs",
    "examples_from_records",
    "guide_rows",
    "guided_logits",
    "pair_scores",
    "plausible_candidates",
    "score_candidates",
    "split_by_item",
    "step_spans",
    "train_verifier",
    "write_metrics",
]
