"""Turning a query into the chat messages a model reads, per task type."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from orchestrator.types import Query, TaskType
from workers.base import ChatMessage

__all__ = ["DEFAULT_PROMPTS", "PromptConfig", "build_prompt"]


class PromptConfig(BaseModel):
    """A system message (optional) and a user template with ``{question}`` (and, for
    multiple choice, ``{choices}``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    system: str | None = None
    template: str = "{question}"


DEFAULT_PROMPTS: dict[TaskType, PromptConfig] = {
    "math": PromptConfig(
        system="You are a careful math tutor. Reason step by step.",
        template=(
            "{question}\n\nSolve the problem step by step. "
            "End with a final line of the form 'The answer is N.' where N is a number."
        ),
    ),
    "code": PromptConfig(
        system="You are an expert Python programmer.",
        template=(
            "Complete the following Python function. Reply with the whole function in one "
            "```python code block.\n\n```python\n{question}\n```"
        ),
    ),
    "multiple_choice": PromptConfig(
        template=(
            "{question}\n\n{choices}\n\nThink it through, then end with "
            "'The answer is (X).' where X is the letter of your choice."
        ),
    ),
    "text": PromptConfig(
        template="{question}\n\nThink it through, then give the final answer on the last line."
    ),
}


def build_prompt(query: Query, config: PromptConfig | None = None) -> tuple[ChatMessage, ...]:
    """The chat messages for ``query`` (the task's default prompt unless one is given)."""
    config = config or DEFAULT_PROMPTS[query.task]
    choices = "\n".join(f"({chr(ord('A') + i)}) {c}" for i, c in enumerate(query.choices))
    user = config.template.format(question=query.text, choices=choices)
    messages = [ChatMessage(role="user", content=user)]
    if config.system:
        messages.insert(0, ChatMessage(role="system", content=config.system))
    return tuple(messages)
