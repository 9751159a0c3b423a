"""The MiniLM sentence embedder: shape, normalisation, meaning, and its pooling."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from workers.embedder import SentenceEmbedder, mean_pool


def test_mean_pool_ignores_padding() -> None:
    """Mean pooling averages only the positions the attention mask marks."""
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert mean_pool(hidden, mask).tolist() == [[2.0, 3.0]]


@pytest.fixture(scope="module")
def embedder(embedder_name: str) -> SentenceEmbedder:
    return SentenceEmbedder.load(embedder_name, batch_size=2)


@pytest.mark.slow
def test_similar_sentences_are_closer_than_unrelated_ones(embedder: SentenceEmbedder) -> None:
    """Two phrasings of one arithmetic question are nearer each other than to a recipe."""
    vectors = embedder.embed(
        ["What is seven plus five?", "How much is 7 + 5?", "Preheat the oven and whisk two eggs."]
    )
    assert vectors.shape == (3, 384)
    assert torch.allclose(vectors.norm(dim=1), torch.ones(3), atol=1e-5)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > similarity[0, 2] + 0.2
    assert similarity[0, 1] > similarity[1, 2] + 0.2


@pytest.mark.slow
def test_batched_embeddings_match_a_manual_mean_pool(embedder: SentenceEmbedder) -> None:
    """Padded batches equal the mean of each text's unpadded token vectors, L2-normalised."""
    from transformers import AutoModel, AutoTokenizer

    from workers.catalog import resolve

    texts = ["Short.", "A much longer sentence about routing queries between models.", "Mid one."]
    directory = resolve("all-minilm-l6-v2")
    tokenizer: Any = AutoTokenizer.from_pretrained(directory)
    model: Any = AutoModel.from_pretrained(directory).eval()
    expected = []
    with torch.inference_mode():
        for text in texts:
            tokens = tokenizer(text, return_tensors="pt")
            mean = model(**tokens).last_hidden_state[0].mean(dim=0)
            expected.append(mean / mean.norm())
    assert torch.allclose(embedder.embed(texts), torch.stack(expected), atol=1e-5)
    assert embedder.embed([]).shape == (0, 384)
