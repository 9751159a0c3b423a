"""Extended vocabularies: latent ids added as special tokens, saved as an ordinary
checkpoint plus a JSON of their range, loaded back, and never shown as text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from tests.workers.latent.tiny_latent import char_tokenizer, latent_checkpoint, tiny_llama
from workers.latent import (
    END_LATENT,
    LATENT_FILE,
    START_LATENT,
    LatentModel,
    LatentVocabulary,
    extend_vocabulary,
    latent_token,
    read_latent_vocabulary,
)


def test_extension_adds_contiguous_special_ids_and_keeps_text_logits() -> None:
    """K codes then the two delimiters get the next ids; the model gets rows for them; the
    logits of the old vocabulary are unchanged."""
    tokenizer = char_tokenizer()
    model = tiny_llama(len(tokenizer))
    ids = torch.tensor([tokenizer.encode("abc 12")])
    with torch.no_grad():
        before = model(input_ids=ids).logits
    old = len(tokenizer)
    vocabulary = extend_vocabulary(model, tokenizer, 5)
    assert vocabulary == LatentVocabulary(first_id=old, count=5, start_id=old + 5, end_id=old + 6)
    assert tokenizer.convert_tokens_to_ids([latent_token(0), START_LATENT, END_LATENT]) == [
        old,
        old + 5,
        old + 6,
    ]
    assert model.get_input_embeddings().weight.shape[0] == old + 7
    with torch.no_grad():
        after = model(input_ids=ids).logits
    torch.testing.assert_close(after[..., :old], before)
    with pytest.raises(ValueError, match="already has latent tokens"):
        extend_vocabulary(model, tokenizer, 5)


def test_saved_checkpoint_loads_as_an_ordinary_model(tmp_path: Path) -> None:
    """save_pretrained files plus the JSON: AutoModel/AutoTokenizer load it, the JSON gives
    the range back, and decoding drops latent ids."""
    path, vocabulary = latent_checkpoint(tmp_path / "model", codes=6)
    assert json.loads((path / LATENT_FILE).read_text())["first_id"] == vocabulary.first_id
    assert read_latent_vocabulary(path) == vocabulary
    assert read_latent_vocabulary(tmp_path) is None
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    assert model.config.vocab_size == vocabulary.end_id + 1
    text_ids = tokenizer.encode("ab 1")
    mixed = [vocabulary.start_id, vocabulary.code_id(3), vocabulary.end_id, *text_ids]
    assert tokenizer.decode(mixed, skip_special_tokens=True) == "ab 1"
    assert vocabulary.count_latent(mixed) == 3
    assert vocabulary.text_ids(mixed) == text_ids
    assert vocabulary.code_of(vocabulary.code_id(3)) == 3
    assert vocabulary.code_of(vocabulary.start_id) is None
    loaded = LatentModel.load(path, tokenizer)
    assert loaded.vocabulary == vocabulary
    assert loaded.projection is None


def test_mismatched_or_broken_latent_files_are_refused(tmp_path: Path) -> None:
    """A JSON whose range does not fit the tokenizer, a broken JSON, a missing projection
    and latent tokens that decode as text are each refused with what is wrong."""
    path, vocabulary = latent_checkpoint(tmp_path / "model", codes=4)
    tokenizer = AutoTokenizer.from_pretrained(path)
    shifted = vocabulary.model_copy(
        update={"first_id": vocabulary.first_id + 1, "start_id": vocabulary.start_id + 1,
                "end_id": vocabulary.end_id + 1}
    )  # fmt: skip
    (path / LATENT_FILE).write_text(shifted.model_dump_json())
    with pytest.raises(ValueError, match="do not match"):
        LatentModel.load(path, tokenizer)
    (path / LATENT_FILE).write_text('{"first_id": 3}')
    with pytest.raises(ValueError, match="not a latent vocabulary"):
        read_latent_vocabulary(path)
    missing = vocabulary.model_copy(update={"thought_projection": "projection.safetensors"})
    (path / LATENT_FILE).write_text(missing.model_dump_json())
    with pytest.raises(ValueError, match=r"projection\.safetensors is missing"):
        LatentModel.load(path, tokenizer)
    with pytest.raises(ValueError, match="contiguous"):
        LatentVocabulary(first_id=10, count=2, start_id=13, end_id=14)
    plain = char_tokenizer()
    plain.add_tokens([latent_token(0), START_LATENT, END_LATENT])  # not special: shown as text
    shown = LatentVocabulary(first_id=43, count=1, start_id=44, end_id=45)
    with pytest.raises(ValueError, match="shows latent ids as text"):
        shown.check_tokenizer(plain)
