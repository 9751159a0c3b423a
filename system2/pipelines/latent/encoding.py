"""A kept chain of thought as token ids: the prompt evaluation poses, the chain's reasoning,
and its answer.

The prompt is the one ``Orchestrator`` poses for the question (``build_prompt`` with the
math prompt, encoded by ``encode_prompt`` as every worker encodes it), so a fine-tuned model
is trained on exactly what it reads when evaluated. The chain's text is split at its last
``The answer is`` (the final line the math prompt asks for): the reasoning before it is the
chain of thought (whose leading chunks Token Assorted replaces), the rest plus the EOS
token is the answer (always text). A chain without that line is all reasoning, and its
answer is the EOS token alone.

``cue`` marks where CODI aligns teacher and student: the position of the answer's last
token of ``The answer is`` (its hidden state predicts the number), as an index into the
answer; -1 (no cue) is the position just before the answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.prompts import DEFAULT_PROMPTS, PromptConfig, build_prompt
from orchestrator.types import Query
from workers.chat_prompt import encode_prompt

__all__ = ["ANSWER_CUE", "ChainTokens", "encode_chain", "encode_chains", "split_answer"]

ANSWER_CUE = "The answer is"


@dataclass(frozen=True, slots=True)
class ChainTokens:
    item: str
    prompt_ids: tuple[int, ...]
    cot_ids: tuple[int, ...]
    answer_ids: tuple[int, ...]  # the answer's text, then EOS
    cue: int  # index in answer_ids of the aligned position (-1: just before the answer)

    @property
    def length(self) -> int:
        return len(self.prompt_ids) + len(self.cot_ids) + len(self.answer_ids)


def split_answer(text: str) -> tuple[str, str]:
    """(reasoning, answer) of a chain: split at its last ``The answer is``."""
    at = text.rfind(ANSWER_CUE)
    if at < 0:
        return text, ""
    return text[:at], text[at:]


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def encode_chain(
    tokenizer: Any, record: Mapping[str, Any], prompt: PromptConfig | None = None
) -> ChainTokens:
    """The token ids of a kept chain record (``chains.collect_chains``)."""
    if record.get("status") != "kept" or not record.get("text"):
        raise ValueError(f"chain {record.get('id')!r} was not kept: nothing to encode")
    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has no EOS token to end the answer with")
    query = Query(text=str(record["question"]), task="math")
    prompt_ids = encode_prompt(tokenizer, build_prompt(query, prompt or DEFAULT_PROMPTS["math"]))
    reasoning, answer = split_answer(str(record["text"]))
    cot_ids = tuple(int(t) for t in tokenizer.encode(reasoning, add_special_tokens=False))
    answer_text = tuple(int(t) for t in tokenizer.encode(answer, add_special_tokens=False))
    cue_ids = tokenizer.encode(ANSWER_CUE, add_special_tokens=False)
    cue = _common_prefix(cue_ids, answer_text) - 1 if answer else -1
    return ChainTokens(
        str(record["id"]),
        prompt_ids,
        cot_ids,
        (*answer_text, int(tokenizer.eos_token_id)),
        cue,
    )


def encode_chains(
    tokenizer: Any,
    records: Sequence[Mapping[str, Any]],
    *,
    max_length: int,
    prompt: PromptConfig | None = None,
) -> tuple[list[ChainTokens], int]:
    """The kept chains as token ids, leaving out those longer than ``max_length`` tokens in
    all; returns them and how many were left out."""
    if max_length < 1:
        raise ValueError(f"max_length must be >= 1, got {max_length}")
    encoded = [encode_chain(tokenizer, r, prompt) for r in records]
    kept = [c for c in encoded if c.length <= max_length]
    return kept, len(encoded) - len(kept)
