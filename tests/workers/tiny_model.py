"""A tiny random-weight Qwen2 and a character tokenizer, for testing decoding arithmetic.

Weights are random: these check batching, padding, caching and log-prob bookkeeping
against an unbatched reference computation, never output quality.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

ALPHABET = "abcdefghijklmnopqrstuvwxyz .,0123456789"
PAD, EOS = 0, 1
OFFSET = 2


class CharTokenizer:
    """One token per character of ``ALPHABET``; ids 0 and 1 are pad and EOS."""

    pad_token_id = PAD
    eos_token_id = EOS
    chat_template = None

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return [ALPHABET.index(ch) + OFFSET for ch in text]

    def decode(self, ids: Any, skip_special_tokens: bool = True) -> str:
        return "".join(ALPHABET[i - OFFSET] for i in ids if i >= OFFSET)


def tiny_config(vocab_size: int, **overrides: Any) -> Qwen2Config:
    """A 2-layer, 32-wide Qwen2 config (pad 0, EOS 1); ``overrides`` win."""
    settings: dict[str, Any] = {
        "vocab_size": vocab_size,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 256,
        "eos_token_id": EOS,
        "pad_token_id": PAD,
    }
    return Qwen2Config(**(settings | overrides))


def tiny_model(seed: int = 0) -> Qwen2ForCausalLM:
    torch.manual_seed(seed)
    return Qwen2ForCausalLM(tiny_config(len(ALPHABET) + OFFSET)).eval()
