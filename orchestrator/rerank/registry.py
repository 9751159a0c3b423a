"""``RERANKERS``: every reranker by ``kind``, and ``build_reranker`` to make one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from orchestrator.rerank.base import Reranker
from orchestrator.rerank.coder import CoderReranker
from orchestrator.rerank.coder_reviewer import CoderReviewerReranker
from orchestrator.rerank.codersa import RSAReranker
from orchestrator.rerank.random_pick import RandomReranker

__all__ = ["RERANKERS", "build_reranker"]

RERANKERS: dict[str, Callable[..., Reranker]] = {
    "random": RandomReranker,
    "coder": CoderReranker,
    "coder_reviewer": CoderReviewerReranker,
    "rsa": RSAReranker,
}


def build_reranker(kind: str, **options: Any) -> Reranker:
    """The reranker named ``kind``, built with ``options``; an unknown kind lists the known.

    >>> build_reranker("random", seed=3)
    RandomReranker(seed=3)
    """
    try:
        make = RERANKERS[kind]
    except KeyError:
        known = ", ".join(sorted(RERANKERS))
        raise ValueError(f"unknown reranker {kind!r}; known: {known}") from None
    return make(**options)
