"""Reranking: pick one of several sampled candidates with the model's own log-probs,
nothing executed. CodeRSA (pragmatic reranking, arXiv 2502.15835) and its baselines.

One module per part:

- ``task``: ``RerankTask``, what a reranker reads (instruction ``I_0``, candidates, how
  code is shown: docstrings stripped, entry point renamed to ``f``);
- ``prompts``: the speaker, listener and reviewer prompts;
- ``model_calls``: the calls through the recorder (descriptions, the listener matrix
  ``L0``, the reviewer's log-probs);
- ``evidence``: those calls gathered once per component, shared, each one's cost kept;
- ``base``: the ``Reranker`` interface and its ``Reranking`` result;
- ``codersa``: CodeRSA's scoring and the baselines' as pure functions, and ``RSAReranker``;
- ``coder``, ``coder_reviewer``, ``random_pick``: the baselines' rerankers;
- ``registry``: ``RERANKERS`` by kind and ``build_reranker``.

The strategy that samples candidates and reranks them is ``orchestrator.strategies.rerank``.

Example:
    >>> from orchestrator.rerank import build_reranker, rsa_scores
    >>> build_reranker("rsa").needs
    ('coder_column', 'describe', 'listener_rest')
    >>> rsa_scores([[-2.0, -1.0, -9.0], [-4.0, -6.0, -2.0]]).best
    0
"""

from __future__ import annotations

from orchestrator.rerank.base import Reranker, Reranking
from orchestrator.rerank.coder import CoderReranker
from orchestrator.rerank.coder_reviewer import CoderReviewerReranker
from orchestrator.rerank.codersa import (
    RSAReranker,
    RSAScores,
    ScoredChoice,
    coder_reviewer_scores,
    coder_scores,
    random_choice,
    rsa_scores,
)
from orchestrator.rerank.evidence import COMPONENTS, ComponentCost, Evidence, gather_evidence
from orchestrator.rerank.model_calls import describe_candidates, listener_matrix, reviewer_logprobs
from orchestrator.rerank.prompts import listener_prompt, reviewer_prompt, speaker_prompt
from orchestrator.rerank.random_pick import RandomReranker
from orchestrator.rerank.registry import RERANKERS, build_reranker
from orchestrator.rerank.task import RerankTask, rename_entry_point, strip_docstrings

__all__ = [
    "COMPONENTS",
    "RERANKERS",
    "CoderReranker",
    "CoderReviewerReranker",
    "ComponentCost",
    "Evidence",
    "RSAReranker",
    "RSAScores",
    "RandomReranker",
    "RerankTask",
    "Reranker",
    "Reranking",
    "ScoredChoice",
    "build_reranker",
    "coder_reviewer_scores",
    "coder_scores",
    "describe_candidates",
    "gather_evidence",
    "listener_matrix",
    "listener_prompt",
    "random_choice",
    "rename_entry_point",
    "reviewer_logprobs",
    "reviewer_prompt",
    "rsa_scores",
    "speaker_prompt",
    "strip_docstrings",
]
