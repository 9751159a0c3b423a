"""OpenAI response bodies from an ``Answer``: a whole completion, or stream chunks.

``ResponseShape`` is the one difference between the two endpoints: chat bodies hold
``message``/``delta`` objects, completion bodies ``text``. Both carry ``usage`` summed over
every worker call of the query, and a ``system2`` field: the trace summary (plan, vote
tally, per-model usage, failures, what stopped the query, what an exact early stop saved)
and, when asked, the whole trace.

``finish_reason`` is the chosen candidate's (``stop``/``length``), or ``budget`` /
``deadline`` when the query was stopped by its budget or deadline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestrator.events import AnswerDecided
from orchestrator.types import Answer

__all__ = ["CHAT", "TEXT", "ResponseShape", "finish_reason", "system2_summary", "usage_body"]


def usage_body(answer: Answer) -> dict[str, int]:
    prompt, completion = answer.usage.prompt_tokens, answer.usage.completion_tokens
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def finish_reason(answer: Answer, decided: AnswerDecided | None) -> str:
    """``budget``/``deadline`` if that stopped the query, else the chosen candidate's
    (``decided``: the query's last event; without it, ``stop``)."""
    reason = answer.stopped_by
    if reason is not None:
        return reason
    return decided.finish_reason if decided is not None else "stop"


def system2_summary(answer: Answer, profile: str, *, trace: bool = False) -> dict[str, Any]:
    """What the ``system2`` field of a response says about the query."""
    vote = answer.trace.vote
    summary: dict[str, Any] = {
        "query_id": answer.query.id,
        "profile": profile,
        "answer": answer.answer,
        "status": answer.status,
        "stopped_by": answer.stopped_by,
        "plan": answer.trace.plan,
        "vote": None if vote is None else vote.model_dump(mode="json"),
        "candidates": len(answer.trace.candidates),
        "usage": answer.usage.model_dump(mode="json"),
        "failures": list(answer.trace.failures),
    }
    if "exact_stop" in answer.trace.extra:
        summary["exact_stop"] = answer.trace.extra["exact_stop"]
    if trace:
        summary["trace"] = answer.trace.model_dump(mode="json")
    return summary


@dataclass(frozen=True)
class ResponseShape:
    """The bodies of one endpoint: ``chat.completion`` or ``text_completion``."""

    object: str
    chunk_object: str
    id_prefix: str
    chat: bool

    def completion_id(self, query_id: str) -> str:
        return f"{self.id_prefix}-{query_id}"

    def body(
        self, answer: Answer, *, finish: str, model: str, created: int, trace: bool = False
    ) -> dict[str, Any]:
        """The whole completion."""
        choice: dict[str, Any] = {"index": 0, "finish_reason": finish}
        if self.chat:
            choice["message"] = {"role": "assistant", "content": answer.text}
        else:
            choice["text"] = answer.text
        choice["logprobs"] = None
        return {
            "id": self.completion_id(answer.query.id),
            "object": self.object,
            "created": created,
            "model": model,
            "choices": [choice],
            "usage": usage_body(answer),
            "system2": system2_summary(answer, model, trace=trace),
        }

    def chunk(
        self,
        query_id: str,
        *,
        model: str,
        created: int,
        content: str | None = None,
        role: bool = False,
        finish: str | None = None,
        usage: dict[str, int] | None = None,
        system2: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One stream chunk: ``content`` (and for chat, the role on the first chunk), or
        none (progress in ``system2``), or the ``finish`` reason with ``usage``."""
        choice: dict[str, Any] = {"index": 0}
        if self.chat:
            delta: dict[str, Any] = {"role": "assistant"} if role else {}
            if content is not None:
                delta["content"] = content
            choice["delta"] = delta
        else:
            choice["text"] = content or ""
        choice["logprobs"] = None
        choice["finish_reason"] = finish
        body: dict[str, Any] = {
            "id": self.completion_id(query_id),
            "object": self.chunk_object,
            "created": created,
            "model": model,
            "choices": [choice],
        }
        if usage is not None:
            body["usage"] = usage
        if system2 is not None:
            body["system2"] = system2
        return body


CHAT = ResponseShape("chat.completion", "chat.completion.chunk", "chatcmpl", chat=True)
TEXT = ResponseShape("text_completion", "text_completion", "cmpl", chat=False)
