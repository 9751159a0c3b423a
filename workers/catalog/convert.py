"""One-time conversion of a GGUF into a safetensors directory that loads in seconds."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import structlog

from workers.catalog.entries import CatalogEntry
from workers.catalog.gguf_check import gguf_metadata
from workers.errors import PullError

__all__ = ["DTYPES", "convert_gguf"]

log = structlog.get_logger(__name__)

DTYPES = ("float32", "bfloat16", "float16")


def convert_gguf(
    entry: CatalogEntry, gguf: Path, out_dir: Path, *, dtype: str, progress: bool = True
) -> None:
    """De-quantize ``gguf`` with transformers and save model + tokenizer into ``out_dir``."""
    if dtype not in DTYPES:
        raise PullError(f"unsupported dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    from transformers.utils import logging as hf_logging

    bars_were_on = hf_logging.is_progress_bar_enabled()
    if not progress:
        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        _convert(entry, gguf, out_dir, dtype=dtype)
    finally:
        if bars_were_on:
            hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]
    gc.collect()


def _convert(entry: CatalogEntry, gguf: Path, out_dir: Path, *, dtype: str) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = dict(pretrained_model_name_or_path=str(gguf.parent), gguf_file=gguf.name)
    try:
        model: Any = AutoModelForCausalLM.from_pretrained(**source, dtype=getattr(torch, dtype))
        tokenizer: Any = AutoTokenizer.from_pretrained(**source)
    except Exception as exc:  # transformers raises many kinds; all mean "cannot convert"
        raise PullError(f"transformers could not load {gguf}: {exc}") from exc
    # A GGUF-loaded model keeps its quantizer state, which makes save_pretrained refuse.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    # transformers' GGUF tokenizer ignores this flag (Gemma 3 then loses its <bos> and babbles).
    add_bos = gguf_metadata(gguf, ("tokenizer.ggml.add_bos_token",))
    if add_bos["tokenizer.ggml.add_bos_token"] is True:
        tokenizer.add_bos_token = True
        if tokenizer("x")["input_ids"][0] != tokenizer.bos_token_id:
            raise PullError(f"{entry.name}: could not make the tokenizer add <bos>")
    if entry.eos_token_ids:
        model.generation_config.eos_token_id = list(entry.eos_token_ids)
    if entry.chat_template and not getattr(tokenizer, "chat_template", None):
        log.warning("catalog.no_chat_template", model=entry.name)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    n_params = sum(p.numel() for p in model.parameters())
    log.info("catalog.converted", model=entry.name, params=n_params, dtype=dtype)
