"""Tiny inputs for the latent pipeline's tests: a random-weight 2-layer Llama saved as a
base checkpoint with a character tokenizer over printable ASCII, synthetic GSM-style items
whose gold rationales follow reasoning-gym's layout, and a scripted generator.

Weights are random: these check the pipeline's bookkeeping, shapes and resumability,
never what the models learn.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from orchestrator.types import Query
from system2.evaluation.datasets import EvalItem
from tests.workers.latent.tiny_latent import tiny_llama

CHARACTERS = string.printable
PAD, EOS = 0, 1


def printable_tokenizer() -> Any:
    """One token per printable ASCII character; ids 0 and 1 are pad and EOS."""
    vocab = {"<pad>": PAD, "<eos>": EOS} | {ch: i + 2 for i, ch in enumerate(CHARACTERS)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    backend.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    backend.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="<eos>")


def base_checkpoint(directory: Path) -> Path:
    """The tiny Llama and its tokenizer, saved as an ordinary checkpoint."""
    tokenizer = printable_tokenizer()
    model = tiny_llama(len(tokenizer))
    model.generation_config.eos_token_id = EOS
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def synthetic_items(count: int, seed: int = 0) -> list[EvalItem]:
    """GSM-style items a + b with a gold rationale ending ``#### N`` (reasoning-gym's layout)."""
    items = []
    for i in range(count):
        a, b = 3 + i, 10 + 2 * i
        item_id = f"synthetic/s{seed}/{i}"
        rationale = (
            f"Ann has {a} apples and gets {b} more apples from Bob.\n"
            f"So she has {a} + {b} = {a + b} apples.\n#### {a + b}"
        )
        items.append(
            EvalItem(
                id=item_id,
                query=Query(id=item_id, text=f"Ann has {a} apples, Bob gives {b}. Total?"),
                gold=str(a + b),
                metadata={"rg_entry": {"metadata": {"answer_cot": rationale}}},
            )
        )
    return items
