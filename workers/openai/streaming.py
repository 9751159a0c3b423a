"""Reading an OpenAI-compatible server's streamed response (``stream: true``).

``StreamedChoices`` takes the events' payloads one by one: each choice delta becomes a
``TokenChunk`` at once (its text; with vLLM's ``return_token_ids`` its token ids; its
tokens' log-probs), and is kept, so that at the end ``body()`` is the response the server
would have sent whole: the choices with their joined text, tokens' texts, log-probs,
token ids and finish reason, and the ``usage`` of the last event (``stream_options:
{"include_usage": true}``). The whole-response readers (``workers.openai.responses``)
then read it exactly as they read an unstreamed one (stop-string trimming included).

Event shapes (``/v1/completions``; ``/v1/chat/completions``): ``choices[i].index``;
the text in ``text``; ``delta.content`` (absent or null on the role-only chunk);
log-probs in ``logprobs.tokens`` + ``logprobs.token_logprobs``; ``logprobs.content[j]``
``.token`` + ``.logprob``; ``token_ids``, ``finish_reason`` (null until the last chunk of
a choice). A field that is there but mistyped is a ``WorkerFailure`` naming its path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from workers.base import TokenChunk
from workers.openai.responses import ResponseReader

__all__ = ["StreamedChoices"]


@dataclass
class _Choice:
    text: str = ""
    pieces: list[str] | None = field(default_factory=list)  # None: a token had no text
    logprobs: list[float] = field(default_factory=list)
    token_ids: list[int] | None = None  # None: the server sends none
    finish_reason: str | None = None


class StreamedChoices:
    """The ``n`` choices of one streamed response (see the module's docstring)."""

    def __init__(self, r: ResponseReader, n: int, *, chat: bool) -> None:
        self._r = r
        self._chat = chat
        self._choices = [_Choice() for _ in range(n)]
        self._usage: Any = None
        self._events = 0

    def add(self, event: Any) -> list[TokenChunk]:
        """Take one event's payload; the chunks it adds (a choice delta each)."""
        r, at = self._r, f"event {self._events}"
        self._events += 1
        data = r.obj(event, at)
        if data.get("usage") is not None:
            self._usage = data["usage"]
        chunks = []
        for j, raw in enumerate(data.get("choices") or []):
            path = f"{at}.choices[{j}]"
            index = r.integer(raw, "index", path)
            if not 0 <= index < len(self._choices):
                raise r.fail(f"{path}.index is {index}, beyond the {len(self._choices)} asked")
            chunks.append(self._add_choice(index, r.obj(raw, path), path))
        return chunks

    def body(self) -> dict[str, Any]:
        """The whole response the events made, in the unstreamed shape."""
        if self._usage is None:
            raise self._r.fail("no usage in the stream's events (stream_options.include_usage)")
        choices = [self._whole(i, c) for i, c in enumerate(self._choices)]
        return {"choices": choices, "usage": self._usage}

    def _add_choice(self, index: int, raw: dict[str, Any], path: str) -> TokenChunk:
        r, choice = self._r, self._choices[index]
        if self._chat:
            delta = raw.get("delta") or {}
            text = r.obj(delta, f"{path}.delta").get("content") or ""
            where = f"{path}.delta.content"
        else:
            text, where = raw.get("text") or "", f"{path}.text"
        text = r.string_at(text, where)
        pieces, logprobs = self._logprobs(raw.get("logprobs"), f"{path}.logprobs")
        ids: list[int] = []
        if raw.get("token_ids") is not None:
            values = r.array(raw, "token_ids", path)
            ids = [r.integer_at(t, f"{path}.token_ids[{k}]") for k, t in enumerate(values)]
            choice.token_ids = (choice.token_ids or []) + ids
        choice.text += text
        choice.logprobs += logprobs
        if choice.pieces is not None:
            choice.pieces = None if pieces is None else choice.pieces + pieces
        if raw.get("finish_reason") is not None:
            choice.finish_reason = r.string(raw, "finish_reason", path)
        return TokenChunk(index=index, text=text, token_ids=tuple(ids), logprobs=tuple(logprobs))

    def _logprobs(self, lp: Any, path: str) -> tuple[list[str] | None, list[float]]:
        """A delta's tokens' texts (None when not all are named) and log-probs."""
        r = self._r
        if lp is None:
            return [], []
        if self._chat:
            content = r.array(lp, "content", path)
            items = [r.obj(item, f"{path}.content[{k}]") for k, item in enumerate(content)]
            values = [
                r.number_at(r.field(item, "logprob", f"{path}.content[{k}]"), path)
                for k, item in enumerate(items)
            ]
            named = [item.get("token") for item in items]
        else:
            raw = r.array(lp, "token_logprobs", path)
            values = [r.number_at(v, f"{path}.token_logprobs[{k}]") for k, v in enumerate(raw)]
            named = list(lp.get("tokens") or [None] * len(values))
        if len(named) != len(values) or not all(isinstance(p, str) for p in named):
            return None, values
        return [str(p) for p in named], values

    def _whole(self, index: int, c: _Choice) -> dict[str, Any]:
        whole: dict[str, Any] = {"index": index, "finish_reason": c.finish_reason}
        if c.token_ids is not None:
            whole["token_ids"] = c.token_ids
        if self._chat:
            whole["message"] = {"role": "assistant", "content": c.text}
            pieces: list[str | None] = (
                [*c.pieces] if c.pieces is not None else [None] * len(c.logprobs)
            )
            whole["logprobs"] = {
                "content": [
                    {"token": p, "logprob": v} for p, v in zip(pieces, c.logprobs, strict=True)
                ]
            }
        else:
            whole["text"] = c.text
            whole["logprobs"] = {"tokens": c.pieces, "token_logprobs": c.logprobs}
        return whole
