"""Scoring with the shared-trunk head: a guided decoding step, and whole reasoning steps.

``guide_trunk_rows`` is the trunk head's form of ``workers.verifier.guidance.guide_rows``,
with the same rule and the same per-row settings: V_t from each row's raw logits
(``plausible_candidates``), s(x | h_t) for x in V_t from the row's hidden state, then
z* = z + beta * s on V_t and -inf elsewhere (``guided_logits``); rows with beta = 0 come
back unchanged, and rows with |V_t| = 1 are not scored. No transformer pass runs here: the
hidden states are the ones the generator computed for the step. Both engines call it: the
transformers decode loop through ``TrunkGuidance`` (``workers.decoding``'s
``hidden_guidance`` hook) and vLLM through ``workers.vllm.trunk_processors``.

``TrunkStepVerifier`` is the ``StepVerifier`` over the head (as ``TokenStepVerifier`` is
over the LLM2 verifier): a step's score is the mean of s(x_t | h_{t-1}) over its tokens,
all from one forward pass of the generator's decoder over the reply.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any, ClassVar

import torch

from workers.base import Prompt, StepScale
from workers.guidance_stats import GuidanceStats
from workers.verifier.guidance import RowGuidance
from workers.verifier.scoring import guided_logits, plausible_candidates
from workers.verifier.steps import step_spans
from workers.verifier.trunk_head import TrunkHead, output_embeddings

__all__ = ["TrunkGuidance", "TrunkStepVerifier", "guide_trunk_rows", "last_hidden_states"]


def guide_trunk_rows(
    logits: torch.Tensor,
    hidden: torch.Tensor,
    settings: Sequence[RowGuidance],
    head: TrunkHead,
    embeddings: torch.Tensor,
    stats: GuidanceStats | None = None,
) -> torch.Tensor:
    """Guided logits for ``[rows, vocab]`` raw ``logits`` (a new tensor; input untouched).

    ``hidden`` ([rows, d]) is each row's final-norm hidden state at the step, ``embeddings``
    the generator's ``[vocab, d]`` LM-head weight. ``stats``, if given, counts the guided
    rows (skipped: |V_t| = 1), scored candidates and the seconds spent here.
    """
    if not len(settings) == logits.shape[0] == hidden.shape[0]:
        raise ValueError("logits, hidden and settings must have one entry per row")
    started = time.perf_counter()
    groups: dict[tuple[float, float, int], list[int]] = {}
    for i, s in enumerate(settings):
        if s.beta > 0.0:
            groups.setdefault((s.beta, s.alpha, s.top_k), []).append(i)
    if len(groups) == 1 and len(next(iter(groups.values()))) == logits.shape[0]:
        (beta, alpha, top_k) = next(iter(groups))  # every row alike: no row gather or copy
        out = _guide_group(logits, hidden, beta, alpha, top_k, head, embeddings, stats)
    else:
        out = logits.clone()
        for (beta, alpha, top_k), members in groups.items():
            out[members] = _guide_group(
                logits[members], hidden[members], beta, alpha, top_k, head, embeddings, stats
            )
    if stats is not None and groups:
        stats.seconds += time.perf_counter() - started
    return out


def _guide_group(
    logits: torch.Tensor,
    hidden: torch.Tensor,
    beta: float,
    alpha: float,
    top_k: int,
    head: TrunkHead,
    embeddings: torch.Tensor,
    stats: GuidanceStats | None,
) -> torch.Tensor:
    """``guide_trunk_rows`` for rows that share one setting (a new tensor)."""
    candidates = plausible_candidates(logits, alpha, top_k)
    scored = ~candidates.single
    if stats is not None:
        sizes = candidates.valid.sum(dim=-1)
        stats.count_rows(
            scored=int(scored.sum()),
            skipped=int(candidates.single.sum()),
            candidates=int(sizes[scored].sum()),
        )
    scores = torch.zeros(candidates.ids.shape, dtype=torch.float32, device=logits.device)
    if bool(scored.any()):
        rows = hidden[scored.to(hidden.device)]
        found = head.score_candidates(rows, embeddings, candidates.ids[scored])
        scores[scored] = found.to(device=logits.device, dtype=torch.float32)
    return guided_logits(logits, candidates.ids, scores, beta, candidates.valid)


class TrunkGuidance:
    """Guides ``workers.decoding.decode_batch`` with a trunk head (its ``hidden_guidance``).

    Rows are independent (no cache of its own): the decode loop hands each step's guided
    rows' logits, settings and hidden states.
    """

    def __init__(self, head: TrunkHead, causal_lm: Any) -> None:
        self.head = head
        self.embeddings = output_embeddings(causal_lm)
        self.stats = GuidanceStats()

    def __call__(
        self,
        sequences: Sequence[Sequence[int]],
        logits: torch.Tensor,
        settings: Sequence[RowGuidance],
        hidden: torch.Tensor,
    ) -> torch.Tensor:
        if len(sequences) != logits.shape[0]:
            raise ValueError("sequences and logits must have one entry per row")
        with torch.no_grad():
            return guide_trunk_rows(
                logits, hidden, settings, self.head, self.embeddings, self.stats
            )


def last_hidden_states(
    causal_lm: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """``[batch, seq, d]`` final-norm hidden states of the generator's decoder (what its LM
    head reads), without computing the logits."""
    decoder = causal_lm.get_decoder() if hasattr(causal_lm, "get_decoder") else None
    if decoder is None:
        raise ValueError("cannot find the generator's decoder (get_decoder())")
    device = output_embeddings(causal_lm).device
    mask = None if attention_mask is None else attention_mask.to(device)
    out = decoder(input_ids=input_ids.to(device), attention_mask=mask)
    hidden: torch.Tensor = out.last_hidden_state
    return hidden


class TrunkStepVerifier:
    """Step score = mean of s(x_t | h_{t-1}) over the step's tokens (a step of no tokens: 0).

    Steps are joined with ``separator`` (a newline, as step-wise search writes them) and
    tokenized as ``TokenStepVerifier`` does (``step_spans``).
    """

    scale: ClassVar[StepScale] = "logit"

    def __init__(
        self, head: TrunkHead, causal_lm: Any, tokenizer: Any, *, separator: str = "\n"
    ) -> None:
        self.head = head
        self.causal_lm = causal_lm
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
        if spans[0][0] == 0:
            raise ValueError("the prompt encodes to no tokens: the first step has no state")
        hidden = last_hidden_states(self.causal_lm, torch.tensor([ids], dtype=torch.long))[0]
        embeddings = output_embeddings(self.causal_lm)
        targets = torch.tensor(ids[1:], dtype=torch.long, device=embeddings.device)
        # Token t is scored in the state before it: hidden[t - 1] predicts ids[t].
        scores = self.head.score_tokens(hidden[:-1], embeddings[targets])
        return [float(scores[a - 1 : b - 1].mean()) if b > a else 0.0 for a, b in spans]
