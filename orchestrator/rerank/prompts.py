"""The rerankers' prompts: one speaker, one listener and one reviewer prompt for every
column, so the log-probs compare.

- speaker (describe, greedy): the candidate, then "describe in one sentence what it does"
  (text: "the question it answers"); the description is the reply's first non-empty line;
- listener, ``L0[i][j] = log P(c_i | I_j)``: "write code for: I_j" (text: I_j alone), with the
  candidate (code in a ```python fence) as the scored reply (``continuation``);
- reviewer, ``log P(I_0 | c_i)``: the candidate, then "write the instruction it was written
  for", with ``I_0`` as the scored reply.
"""

from __future__ import annotations

from orchestrator.rerank.task import RENAMED, RerankTask
from workers.base import ChatMessage, Prompt

__all__ = [
    "continuation",
    "first_line",
    "listener_prompt",
    "reviewer_prompt",
    "speaker_prompt",
]


def _fenced(code: str) -> str:
    return f"```python\n{code.rstrip()}\n```"


def _what(task: RerankTask) -> str:
    if not task.code:
        return "response"
    return f"Python function `{RENAMED}`" if task.entry_point else "Python program"


def _user(content: str) -> Prompt:
    return (ChatMessage(role="user", content=content),)


def speaker_prompt(task: RerankTask, candidate: str) -> Prompt:
    shown = _fenced(candidate) if task.code else candidate
    ask = (
        f"Describe in one sentence what the {_what(task)} does."
        if task.code
        else "In one sentence, state the question or task this response answers."
    )
    return _user(f"Here is a {_what(task)}:\n\n{shown}\n\n{ask} Reply with that sentence only.")


def listener_prompt(task: RerankTask, instruction: str) -> Prompt:
    if not task.code:
        return _user(instruction)
    return _user(
        f"Write a {_what(task)} for this task:\n\n{instruction}\n\n"
        "Reply with the code in one ```python code block."
    )


def reviewer_prompt(task: RerankTask, candidate: str) -> Prompt:
    shown = _fenced(candidate) if task.code else candidate
    ask = "the instruction it was written for" if task.code else "the question it answers"
    return _user(f"Here is a {_what(task)}:\n\n{shown}\n\nWrite {ask}.")


def continuation(task: RerankTask, candidate: str) -> str:
    """The candidate as the listener's scored reply (code fenced)."""
    return _fenced(candidate) if task.code else candidate


def first_line(text: str) -> str:
    """A speaker reply's description: its first non-empty line, stripped."""
    return next((line.strip() for line in text.splitlines() if line.strip()), "")
