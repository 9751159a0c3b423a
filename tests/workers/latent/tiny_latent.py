"""A tiny random-weight Llama and a real (fast, character-level) HF tokenizer, for testing
latent vocabularies and continuous thoughts without a model hub.

Weights are random: these check bookkeeping and arithmetic against reference computations,
never output quality.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from workers.latent import LatentVocabulary, extend_vocabulary, save_latent_model

CHARACTERS = "abcdefghijklmnopqrstuvwxyz .,0123456789=+"
PAD, EOS = 0, 1


def char_tokenizer() -> Any:
    """One token per character of ``CHARACTERS``; ids 0 and 1 are pad and EOS."""
    vocab = {"<pad>": PAD, "<eos>": EOS} | {ch: i + 2 for i, ch in enumerate(CHARACTERS)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    backend.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    backend.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="<eos>")


def tiny_llama(vocab_size: int, seed: int = 0) -> LlamaForCausalLM:
    """A 2-layer, 32-wide Llama (pad 0, EOS 1) with seeded random weights."""
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        pad_token_id=PAD,
        eos_token_id=EOS,
        bos_token_id=None,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config).eval()


def latent_checkpoint(directory: Path, codes: int = 8) -> tuple[Path, LatentVocabulary]:
    """A tiny Llama with ``codes`` latent tokens and the delimiters, saved to ``directory``."""
    tokenizer = char_tokenizer()
    model = tiny_llama(len(tokenizer))
    vocabulary = extend_vocabulary(model, tokenizer, codes)
    return save_latent_model(model, tokenizer, vocabulary, directory), vocabulary
