"""A tiny random Qwen2 over bytes, for tests that need any text (chat layouts, GSM).

Ids: 0 pad, 1 EOS, 2 + b for byte b. Random weights: outputs are noise, so tests check
bookkeeping, never quality.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import Qwen2ForCausalLM

from tests.workers.tiny_model import EOS, PAD, tiny_config

OFFSET = 2
VOCAB = 256 + OFFSET


class ByteTokenizer:
    """One token per UTF-8 byte; no chat template (workers fall back to "Role: content")."""

    pad_token_id = PAD
    eos_token_id = EOS
    chat_template = None

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return [b + OFFSET for b in text.encode()]

    def decode(self, ids: Any, skip_special_tokens: bool = True) -> str:
        data = bytes(int(i) - OFFSET for i in ids if int(i) >= OFFSET)
        return data.decode(errors="replace")


def byte_model(seed: int = 0) -> Qwen2ForCausalLM:
    torch.manual_seed(seed)
    return Qwen2ForCausalLM(tiny_config(VOCAB, max_position_embeddings=2048)).eval()
