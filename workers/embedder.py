"""``SentenceEmbedder``: a sentence-transformers model (by default the catalog's
all-MiniLM-L6-v2) run with plain transformers, as features for the query router.

It reproduces sentence-transformers' pipeline for this model from the files in its
directory: the encoder (``AutoModel``), mean pooling over the attention mask
(``1_Pooling/config.json``: ``pooling_mode_mean_tokens``), L2 normalisation (the
``Normalize`` module listed in ``modules.json``) and truncation at ``max_seq_length``
(``sentence_bert_config.json``: 256 word pieces). Other pooling modes are refused rather
than silently approximated.

Example:
    >>> embedder = SentenceEmbedder.load()  # doctest: +SKIP
    >>> embedder.embed(["What is 2 + 2?"]).shape  # doctest: +SKIP
    torch.Size([1, 384])
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import torch

from workers.catalog import resolve
from workers.errors import CatalogError

__all__ = ["DEFAULT_EMBEDDER", "SentenceEmbedder", "TextEmbedder", "mean_pool"]

DEFAULT_EMBEDDER = "all-minilm-l6-v2"


class TextEmbedder(Protocol):
    """What the router needs from an embedder: a name (recorded with a trained router, so
    it is never fed vectors from another space), the vector size and ``embed``."""

    @property
    def name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        """One float32 row per text, shape ``[len(texts), dim]``."""
        ...


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of the token vectors ``hidden [b, t, d]`` where ``attention_mask [b, t]`` is 1."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


class SentenceEmbedder:
    """Mean-pooled, L2-normalised sentence embeddings from a transformers encoder."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        name: str,
        max_length: int = 256,
        normalize: bool = True,
        batch_size: int = 64,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self._model = model.eval()
        self._tokenizer = tokenizer
        self._name = name
        self._dim = int(model.config.hidden_size)
        self.max_length = max_length
        self.normalize = normalize
        self.batch_size = batch_size

    @property
    def name(self) -> str:
        return self._name

    @property
    def dim(self) -> int:
        return self._dim

    @classmethod
    def load(cls, name: str = DEFAULT_EMBEDDER, *, batch_size: int = 64) -> SentenceEmbedder:
        """Load a catalog embedder (pulled beforehand) or a local sentence-transformers dir."""
        from transformers import AutoModel, AutoTokenizer

        directory = resolve(name)
        max_length, normalize = _pipeline_settings(directory)
        tokenizer = AutoTokenizer.from_pretrained(directory)
        model = AutoModel.from_pretrained(directory, dtype=torch.float32)
        return cls(
            model,
            tokenizer,
            name=name,
            max_length=max_length,
            normalize=normalize,
            batch_size=batch_size,
        )

    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        """Embeddings of ``texts``, ``[len(texts), dim]`` float32, in order."""
        if isinstance(texts, str):
            raise TypeError("embed takes a sequence of texts, not one string")
        rows = [
            self._embed_batch(texts[i : i + self.batch_size])
            for i in range(0, len(texts), self.batch_size)
        ]
        return torch.cat(rows) if rows else torch.empty(0, self.dim)

    @torch.inference_mode()
    def _embed_batch(self, texts: Sequence[str]) -> torch.Tensor:
        encoded = self._tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )
        hidden = self._model(**encoded).last_hidden_state
        pooled = mean_pool(hidden, encoded["attention_mask"])
        if self.normalize:
            pooled = torch.nn.functional.normalize(pooled, p=2.0, dim=1)
        return pooled.float()


def _pipeline_settings(directory: Path) -> tuple[int, bool]:
    """(max_length, normalize) from the sentence-transformers files; refuse non-mean pooling."""
    pooling = _read_json(directory / "1_Pooling" / "config.json")
    if pooling is not None and not pooling.get("pooling_mode_mean_tokens", False):
        modes = sorted(k for k, v in pooling.items() if k.startswith("pooling_mode") and v)
        raise CatalogError(f"{directory}: only mean pooling is supported, config has {modes}")
    settings = _read_json(directory / "sentence_bert_config.json") or {}
    modules = _read_json(directory / "modules.json")
    normalize = modules is None or any(
        str(m.get("type", "")).endswith(".Normalize") for m in modules
    )
    return int(settings.get("max_seq_length", 256)), normalize


def _read_json(path: Path) -> Any:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CatalogError(f"{path}: unreadable sentence-transformers config: {exc}") from None
