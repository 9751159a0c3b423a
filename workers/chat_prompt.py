"""How a prompt becomes the text and token ids a model reads, the same for every backend.

``render_prompt`` writes chat messages through the tokenizer's chat template (a model
without one, a base model, gets a plain "Role: content" layout); ``encode_prompt`` adds an
``assistant_prefix`` to the rendered text and tokenizes it. ``TransformersWorker``,
``VLLMWorker`` (with the engine's tokenizer) and the step verifiers all encode this way, so
the same prompt is the same token ids wherever it runs.
"""

from __future__ import annotations

from typing import Any

from workers.base import ChatMessage, Prompt

__all__ = ["encode_prompt", "render_prompt"]


def render_prompt(tokenizer: Any, prompt: Prompt) -> str:
    """The text a model reads; chat messages go through the tokenizer's chat template.

    A model without a chat template (a base model) gets a plain "Role: content" layout.
    """
    if isinstance(prompt, str):
        return prompt
    if getattr(tokenizer, "chat_template", None):
        messages = [m.model_dump() for m in prompt]
        text: str = tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False
        )
        return text
    return _plain_chat(prompt)


def encode_prompt(
    tokenizer: Any, prompt: Prompt, assistant_prefix: str = "", rendered: str | None = None
) -> tuple[int, ...]:
    """The token ids a worker feeds for ``prompt`` + ``assistant_prefix`` (``rendered``:
    the prompt already rendered by ``render_prompt``)."""
    text = rendered if rendered is not None else render_prompt(tokenizer, prompt)
    # A chat template already writes the special tokens it wants.
    ids = tokenizer.encode(text + assistant_prefix, add_special_tokens=isinstance(prompt, str))
    if not ids:
        raise ValueError("the prompt encodes to no tokens")
    return tuple(int(i) for i in ids)


def _plain_chat(messages: tuple[ChatMessage, ...]) -> str:
    lines = [f"{m.role.capitalize()}: {m.content}" for m in messages]
    return "\n\n".join(lines) + "\n\nAssistant:"
