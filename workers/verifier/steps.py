"""Step verifiers: one score per reasoning step of a reply, for voting and search.

A ``StepVerifier`` (the protocol lives at the seam, ``workers.base``) scores the steps of a
reply to a prompt; higher is better. Three:

* ``TokenStepVerifier``: the LLM2 token verifier aggregated over a step (ours): the step's
  score is the mean of s(x_<t, x_t) over its tokens, a real number (a Bradley-Terry
  logit). One causal forward pass gives every s(x_<t, x_t) of the reply at once, since the
  token at t then sees exactly x_<t and itself, as a scored candidate does.
* ``PRMStepVerifier``: a process reward model run with transformers, read at the end of
  every step; scores are P(step is correct) in [0, 1].
* ``PooledStepVerifier``: a PRM behind HTTP (``OpenAIWorker.step_scores``, vLLM's
  ``/pooling``); scores are P(correct).

Tokenization (both local verifiers): the prompt is encoded as every worker encodes it
(``workers.chat_prompt``), and every step and separator separately, so token boundaries
never straddle two steps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

import torch

from workers.base import Prompt, StepScale
from workers.chat_prompt import encode_prompt
from workers.verifier.network import TokenVerifier

__all__ = [
    "PRMReading",
    "PRMStepVerifier",
    "PooledStepVerifier",
    "TokenStepVerifier",
    "step_spans",
]

PRMReading = Literal["classes", "tokens"]


def step_spans(
    tokenizer: Any, prompt: Prompt, steps: Sequence[str], separator: str
) -> tuple[list[int], list[tuple[int, int]]]:
    """The ids of prompt + ``"".join(step + separator)`` and each step's [start, end) span.

    The prompt encodes as a worker encodes it (``encode_prompt``); each ``step + separator``
    is encoded on its own (no special tokens), so its span covers its separator's tokens too.
    """
    ids = list(encode_prompt(tokenizer, prompt))
    spans = []
    for step in steps:
        piece = [int(i) for i in tokenizer.encode(step + separator, add_special_tokens=False)]
        spans.append((len(ids), len(ids) + len(piece)))
        ids += piece
    return ids, spans


class TokenStepVerifier:
    """Step score = mean of s(x_<t, x_t) over the step's tokens (a step of no tokens: 0).

    Steps are joined with ``separator`` (a newline, as step-wise search writes them).
    """

    scale: ClassVar[StepScale] = "logit"

    def __init__(self, verifier: TokenVerifier, tokenizer: Any, *, separator: str = "\n") -> None:
        self.verifier = verifier
        self.tokenizer = tokenizer
        self.separator = separator

    async def score_steps(self, prompt: Prompt, steps: Sequence[str]) -> list[float]:
        return await asyncio.to_thread(self.score_steps_now, prompt, steps)

    @torch.inference_mode()
    def score_steps_now(self, prompt: Prompt, steps: Sequence[str]) -> list[float]:
        """``score_steps``, run in the calling thread."""
        if not steps:
            return []
        ids, spans = step_spans(self.tokenizer, prompt, steps, self.separator)
        device = self.verifier.device
        scores = self.verifier(torch.tensor([ids], dtype=torch.long, device=device))[0]
        return [float(scores[a:b].mean()) if b > a else 0.0 for a, b in spans]


class PRMStepVerifier:
    """A process reward model read at the last token of the ``step_tag`` after each step.

    ``model(input_ids=...)`` must return ``.logits`` of shape [1, tokens, C]. Readings:

    * ``"classes"`` (a token-classification head, e.g. ``AutoModelForTokenClassification``
      or Qwen2.5-Math-PRM's two-class head): P(correct) = softmax(logits)[positive_class]
      (default: the last class, as vLLM's pooling output is read), or sigmoid when C = 1;
    * ``"tokens"`` (a causal LM, Math-Shepherd style): P(correct) = the probability of
      ``good_token`` renormalised over {``good_token``, ``bad_token``}, or over the whole
      vocabulary when ``bad_token`` is None. Each must encode to exactly one token.
    """

    scale: ClassVar[StepScale] = "probability"

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        step_tag: str = "<extra_0>",
        reading: PRMReading = "classes",
        positive_class: int = -1,
        good_token: str | None = None,
        bad_token: str | None = None,
    ) -> None:
        if not step_tag:
            raise ValueError("step_tag must not be empty")
        if reading == "tokens" and good_token is None:
            raise ValueError("reading='tokens' needs good_token")
        self.model = model
        self.tokenizer = tokenizer
        self.step_tag = step_tag
        self.reading = reading
        self.positive_class = positive_class
        self.good_id = self._one_token(good_token) if good_token is not None else None
        self.bad_id = self._one_token(bad_token) if bad_token is not None else None

    @classmethod
    def load(
        cls, path: str | Path, *, reading: PRMReading = "classes", **kwargs: Any
    ) -> PRMStepVerifier:
        """From a local checkpoint: ``AutoModelForTokenClassification`` for ``"classes"``,
        ``AutoModelForCausalLM`` for ``"tokens"`` (models needing remote code: build the model
        yourself and pass it to the constructor)."""
        from transformers import (
            AutoModelForCausalLM,
            AutoModelForTokenClassification,
            AutoTokenizer,
        )

        loader = AutoModelForTokenClassification if reading == "classes" else AutoModelForCausalLM
        model = loader.from_pretrained(str(path)).eval()
        return cls(model, AutoTokenizer.from_pretrained(str(path)), reading=reading, **kwargs)

    def _one_token(self, text: str) -> int:
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        if len(ids) != 1:
            raise ValueError(f"{text!r} encodes to {len(ids)} tokens, not one")
        return int(ids[0])

    async def score_steps(self, prompt: Prompt, steps: Sequence[str]) -> list[float]:
        return await asyncio.to_thread(self.score_steps_now, prompt, steps)

    @torch.inference_mode()
    def score_steps_now(self, prompt: Prompt, steps: Sequence[str]) -> list[float]:
        """``score_steps``, run in the calling thread."""
        if not steps:
            return []
        ids, spans = step_spans(self.tokenizer, prompt, steps, self.step_tag)
        logits = self.model(input_ids=torch.tensor([ids], dtype=torch.long)).logits[0]
        rows = logits[[end - 1 for _, end in spans]].float()
        if self.reading == "classes":
            if rows.shape[-1] == 1:
                return [float(p) for p in torch.sigmoid(rows[:, 0])]
            return [float(p) for p in torch.softmax(rows, dim=-1)[:, self.positive_class]]
        assert self.good_id is not None
        if self.bad_id is None:
            return [float(p) for p in torch.softmax(rows, dim=-1)[:, self.good_id]]
        pair = rows[:, [self.good_id, self.bad_id]]
        return [float(p) for p in torch.softmax(pair, dim=-1)[:, 0]]


class _StepScorer(Protocol):
    async def step_scores(self, prompt: Prompt, steps: Sequence[str]) -> tuple[float, ...]: ...


class PooledStepVerifier:
    """A PRM served over HTTP: ``OpenAIWorker.step_scores`` (vLLM ``--runner pooling``)."""

    scale: ClassVar[StepScale] = "probability"

    def __init__(self, worker: _StepScorer) -> None:
        self.worker = worker

    async def score_steps(self, prompt: Prompt, steps: Sequence[str]) -> list[float]:
        return list(await self.worker.step_scores(prompt, steps))
