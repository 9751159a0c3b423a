"""Prompt rendering and encoding shared by every backend (``workers.chat_prompt``)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.workers.tiny_model import CharTokenizer
from workers.base import ChatMessage
from workers.chat_prompt import encode_prompt, render_prompt

CHAT = (
    ChatMessage(role="system", content="be brief"),
    ChatMessage(role="user", content="hi there"),
)


class TemplateTokenizer(CharTokenizer):
    """Test double: a character tokenizer with a chat template that records what it got,
    and marks special tokens by encoding them as a leading "." when asked to."""

    chat_template = "{{ messages }}"  # type: ignore[assignment]

    def __init__(self) -> None:
        self.rendered: list[tuple[list[dict[str, Any]], bool]] = []

    def apply_chat_template(
        self, messages: list[dict[str, Any]], *, add_generation_prompt: bool, tokenize: bool
    ) -> str:
        assert not tokenize
        self.rendered.append((messages, add_generation_prompt))
        return " ".join(m["content"] for m in messages) + " ."

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return super().encode(("." if add_special_tokens else "") + text)


def test_a_text_prompt_is_read_as_it_is() -> None:
    """A string prompt renders to itself, whatever the tokenizer."""
    assert render_prompt(TemplateTokenizer(), "2+2=") == "2+2="


def test_chat_goes_through_the_template_with_a_generation_prompt() -> None:
    """Chat messages are handed to the tokenizer's chat template, opening the reply."""
    tokenizer = TemplateTokenizer()
    assert render_prompt(tokenizer, CHAT) == "be brief hi there ."
    assert tokenizer.rendered == [([m.model_dump() for m in CHAT], True)]


def test_without_a_template_chat_gets_a_plain_layout() -> None:
    """A base model (no chat template) reads "Role: content" turns and an open reply."""
    text = render_prompt(CharTokenizer(), CHAT)
    assert text == "System: be brief\n\nUser: hi there\n\nAssistant:"


def test_encoding_appends_the_prefix_and_adds_special_tokens_to_text_only() -> None:
    """The assistant prefix follows the rendered prompt; a chat template already wrote its
    special tokens, so only a text prompt asks the tokenizer for them."""
    tokenizer = TemplateTokenizer()
    assert encode_prompt(tokenizer, "ab", "c") == tuple(tokenizer.encode("abc"))
    chat = encode_prompt(tokenizer, CHAT, "so")
    assert chat == tuple(tokenizer.encode("be brief hi there .so", add_special_tokens=False))
    given = encode_prompt(tokenizer, CHAT, rendered="x")
    assert given == tuple(tokenizer.encode("x", add_special_tokens=False))


def test_a_prompt_of_no_tokens_is_refused() -> None:
    with pytest.raises(ValueError, match="no tokens"):
        encode_prompt(CharTokenizer(), "")
