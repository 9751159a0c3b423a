"""The reranker registry builds rerankers by kind."""

from __future__ import annotations

import pytest

from orchestrator.rerank.registry import build_reranker


def test_unknown_reranker_lists_the_known_ones() -> None:
    """Building an unknown reranker names the valid kinds."""
    with pytest.raises(ValueError, match="coder, coder_reviewer, random, rsa"):
        build_reranker("oracle")
