"""Latent vocabularies (Token Assorted, arXiv 2502.03275): a base model's tokenizer and
embeddings extended with K latent ids ``<|latent_0|>`` .. ``<|latent_{K-1}|>`` and the two
delimiters ``<|start_latent|>`` and ``<|end_latent|>``.

The new tokens are added as *special* tokens, so every decode with
``skip_special_tokens=True`` (the transformers worker's, vLLM's detokeniser) drops them: a
latent model's answers, streams and extracted answers never show them as text. Their ids are
contiguous (latents first, then start, then end) and recorded in a small JSON file next to
the checkpoint (``LATENT_FILE``), which is otherwise an ordinary ``save_pretrained``
directory that the transformers worker and vLLM load as they load any model.

Example:
    >>> vocabulary = extend_vocabulary(model, tokenizer, 1024)  # doctest: +SKIP
    >>> save_latent_model(model, tokenizer, vocabulary, "out/latent-model")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

__all__ = [
    "END_LATENT",
    "LATENT_FILE",
    "START_LATENT",
    "LatentVocabulary",
    "embedding_tables",
    "extend_vocabulary",
    "latent_token",
    "read_latent_vocabulary",
    "save_latent_model",
]

LATENT_FILE = "latent_vocabulary.json"
START_LATENT = "<|start_latent|>"
END_LATENT = "<|end_latent|>"


def latent_token(code: int) -> str:
    """The token text of latent code ``code``."""
    return f"<|latent_{code}|>"


class LatentVocabulary(BaseModel):
    """Where a model's latent ids lie: codes 0..count-1 are ids ``first_id + code``, then
    the start and end delimiters. ``count = 0`` is a model with only the delimiters (e.g.
    continuous thoughts between them).

    ``chunk_tokens`` (L) is how many text tokens one latent code stands for, ``vqvae`` the
    directory (relative to the checkpoint) of the VQ-VAE that made the codes, and
    ``thought_projection`` the file of a continuous-thought projection; each None when the
    model has none.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    first_id: int = Field(ge=0)
    count: int = Field(ge=0)
    start_id: int = Field(ge=0)
    end_id: int = Field(ge=0)
    chunk_tokens: int | None = Field(default=None, ge=1)
    vqvae: str | None = None
    thought_projection: str | None = None

    @model_validator(mode="after")
    def _contiguous(self) -> LatentVocabulary:
        if self.start_id != self.first_id + self.count or self.end_id != self.start_id + 1:
            raise ValueError(
                f"latent ids must be contiguous: codes at {self.first_id}..+{self.count}, then "
                f"start at {self.first_id + self.count} and end after it (got start "
                f"{self.start_id}, end {self.end_id})"
            )
        return self

    @property
    def ids(self) -> range:
        """Every id this vocabulary added (codes and both delimiters)."""
        return range(self.first_id, self.end_id + 1)

    def code_id(self, code: int) -> int:
        """The token id of latent code ``code``."""
        if not 0 <= code < self.count:
            raise ValueError(f"latent code {code} is outside 0..{self.count - 1}")
        return self.first_id + code

    def code_of(self, token_id: int) -> int | None:
        """The latent code of ``token_id`` (None for a delimiter or a text token)."""
        return token_id - self.first_id if self.first_id <= token_id < self.start_id else None

    def is_latent(self, token_id: int) -> bool:
        """Whether ``token_id`` is one of the added ids (a code or a delimiter)."""
        return self.first_id <= token_id <= self.end_id

    def count_latent(self, token_ids: Iterable[int]) -> int:
        """How many of ``token_ids`` are added ids (codes and delimiters)."""
        return sum(1 for t in token_ids if self.first_id <= t <= self.end_id)

    def text_ids(self, token_ids: Iterable[int]) -> list[int]:
        """``token_ids`` without the added ids."""
        return [t for t in token_ids if not self.first_id <= t <= self.end_id]

    def check_tokenizer(self, tokenizer: Any) -> None:
        """Raise ValueError unless ``tokenizer`` has these ids, named as expected, and
        drops them when decoding with ``skip_special_tokens=True``."""
        names = [latent_token(c) for c in range(self.count)] + [START_LATENT, END_LATENT]
        found = tokenizer.convert_tokens_to_ids(names)
        if list(found) != list(self.ids):
            raise ValueError(
                f"the tokenizer's latent ids {found[:3]}..{found[-2:]} do not match "
                f"{LATENT_FILE} ({self.first_id}..{self.end_id})"
            )
        shown = tokenizer.decode(list(self.ids), skip_special_tokens=True)
        if shown:
            raise ValueError(
                "the tokenizer shows latent ids as text (they must be added as special "
                f"tokens): {shown[:60]!r}"
            )


def embedding_tables(model: Any) -> list[Any]:
    """The model's input embedding weight, and its output embedding weight where untied."""
    tables = {id(e.weight): e.weight for e in (model.get_input_embeddings(),)}
    output = model.get_output_embeddings()
    if output is not None:
        tables.setdefault(id(output.weight), output.weight)
    return list(tables.values())


def extend_vocabulary(model: Any, tokenizer: Any, count: int, *, seed: int = 0) -> LatentVocabulary:
    """Add ``count`` latent tokens and the two delimiters to ``tokenizer`` (as special
    tokens) and rows for them to ``model``'s input (and untied output) embeddings.

    New rows start at the mean of the existing rows plus small seeded noise (1% of the
    rows' standard deviation), so the extended model's text predictions barely move.
    """
    from transformers import AddedToken

    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    names = [latent_token(c) for c in range(count)] + [START_LATENT, END_LATENT]
    clashes = [n for n in names if n in tokenizer.get_vocab()]
    if clashes:
        raise ValueError(f"the tokenizer already has latent tokens (e.g. {clashes[0]})")
    old_size = len(tokenizer)
    added = tokenizer.add_tokens(
        [AddedToken(n, special=True, normalized=False) for n in names], special_tokens=True
    )
    if added != len(names):
        raise ValueError(f"added {added} of {len(names)} latent tokens to the tokenizer")
    first_id = int(tokenizer.convert_tokens_to_ids(names[0]))
    if first_id != old_size:
        raise ValueError(f"latent ids start at {first_id}, expected {old_size}")
    rows = model.get_input_embeddings().weight.shape[0]
    model.resize_token_embeddings(max(rows, len(tokenizer)), mean_resizing=False)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for weight in embedding_tables(model):
            old = weight[:old_size]
            noise = torch.randn(len(names), weight.shape[1], generator=generator)
            new = old.mean(0) + noise.to(weight.dtype) * old.std(0) * 0.01
            weight[first_id : first_id + len(names)] = new
    vocabulary = LatentVocabulary(
        first_id=first_id, count=count, start_id=first_id + count, end_id=first_id + count + 1
    )
    vocabulary.check_tokenizer(tokenizer)
    return vocabulary


def save_latent_model(
    model: Any, tokenizer: Any, vocabulary: LatentVocabulary, directory: str | Path
) -> Path:
    """Write ``model`` and ``tokenizer`` with ``save_pretrained`` and the vocabulary's JSON
    to ``directory``; returns it."""
    vocabulary.check_tokenizer(tokenizer)
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    (path / LATENT_FILE).write_text(vocabulary.model_dump_json(indent=2) + "\n")
    return path


def read_latent_vocabulary(directory: str | Path) -> LatentVocabulary | None:
    """The latent vocabulary saved with the checkpoint in ``directory`` (None: an
    ordinary model)."""
    file = Path(directory) / LATENT_FILE
    if not file.is_file():
        return None
    try:
        return LatentVocabulary.model_validate_json(file.read_text())
    except ValidationError as exc:
        raise ValueError(f"{file}: not a latent vocabulary: {exc}") from exc
