"""What a serving backend needs to know about a loaded model's latent part: its latent
vocabulary (``workers.latent.vocabulary``) and its continuous-thought projection, read from
the checkpoint directory, plus the bookkeeping rules every backend follows.

* Text: latent ids are special tokens, so decoding with ``skip_special_tokens=True`` already
  drops them; ``LatentModel.load`` refuses a tokenizer that would show them.
* Continuous thoughts on a model with a latent vocabulary run between its delimiters
  (``<|start_latent|>``, k thoughts, ``<|end_latent|>``; ``ThoughtSettings``), as such a
  model is trained; on other models the k thoughts run alone.
* Usage: ``WorkerUsage.completion_tokens`` counts every position generated after the prompt
  (text tokens, latent ids, and the thought steps: the k thoughts and any delimiters fed
  around them, each one forward step), and ``WorkerUsage.latent_tokens`` how many of those
  were latent (latent ids, delimiters included, and thought steps); text tokens =
  completion_tokens - latent_tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

from torch import nn

from workers.base import Completion, SamplingParams
from workers.errors import UnsupportedRequest
from workers.latent.continuous import ThoughtProjection
from workers.latent.vocabulary import LatentVocabulary, read_latent_vocabulary

__all__ = ["LatentCounts", "LatentModel", "ThoughtSettings", "refuse_thoughts"]


@dataclass(frozen=True, slots=True)
class ThoughtSettings:
    """How a decode loop runs continuous thoughts (``workers.latent.continuous``)."""

    projection: nn.Module | None = None
    start_token_id: int | None = None
    end_token_id: int | None = None


class LatentCounts(TypedDict):
    """A call's generated positions, all and latent (``WorkerUsage`` fields)."""

    completion_tokens: int
    latent_tokens: int


@dataclass(frozen=True, slots=True)
class LatentModel:
    """A loaded model's latent vocabulary and thought projection (both None: an ordinary
    model, which still runs continuous thoughts, without delimiters or projection)."""

    vocabulary: LatentVocabulary | None = None
    projection: ThoughtProjection | None = None

    @classmethod
    def load(cls, directory: str | Path, tokenizer: Any) -> LatentModel:
        """The latent part saved with the checkpoint in ``directory`` (``LatentModel()``
        for an ordinary model); ValueError when it does not fit ``tokenizer``."""
        vocabulary = read_latent_vocabulary(directory)
        if vocabulary is None:
            return cls()
        try:
            vocabulary.check_tokenizer(tokenizer)
        except ValueError as exc:
            raise ValueError(f"{directory}: {exc}") from exc
        projection = None
        if vocabulary.thought_projection is not None:
            file = Path(directory) / vocabulary.thought_projection
            if not file.is_file():
                raise ValueError(f"{directory}: thought projection {file.name} is missing")
            projection = ThoughtProjection.load(file)
        return cls(vocabulary, projection)

    @classmethod
    def read(cls, directory: str | Path) -> LatentModel:
        """``load`` with the checkpoint's own tokenizer, read only when the checkpoint has a
        latent vocabulary (for backends whose engine holds the tokenizer, such as vLLM,
        checked before the engine starts)."""
        if read_latent_vocabulary(directory) is None:
            return cls()
        from transformers import AutoTokenizer

        return cls.load(directory, AutoTokenizer.from_pretrained(directory))

    @property
    def thought_settings(self) -> ThoughtSettings:
        if self.vocabulary is None:
            return ThoughtSettings(self.projection)
        return ThoughtSettings(self.projection, self.vocabulary.start_id, self.vocabulary.end_id)

    def thought_steps(self, thoughts: int) -> int:
        """Forward steps one sample spends on ``thoughts`` continuous thoughts (with both
        delimiters on a model with a latent vocabulary)."""
        if thoughts <= 0:
            return 0
        return thoughts + (2 if self.vocabulary is not None else 0)

    def usage(self, completions: Sequence[Completion], thoughts: int) -> LatentCounts:
        """Usage counts of completions each made after ``thoughts`` continuous thoughts
        (see the module docstring)."""
        steps = self.thought_steps(thoughts) * len(completions)
        ids = 0
        if self.vocabulary is not None:
            ids = sum(self.vocabulary.count_latent(c.token_ids) for c in completions)
        return LatentCounts(
            completion_tokens=sum(len(c.token_ids) for c in completions) + steps,
            latent_tokens=steps + ids,
        )


def refuse_thoughts(model_name: str, params: SamplingParams, backend: str) -> None:
    """Raise ``UnsupportedRequest`` for a request with continuous thoughts on ``backend``
    (which cannot feed hidden states back as input embeddings)."""
    if params.continuous_thoughts > 0:
        raise UnsupportedRequest(
            model_name,
            f"{backend} cannot run continuous thoughts (hidden states fed back as input "
            "embeddings); serve the model with the transformers worker (`kind: transformers`)",
        )
