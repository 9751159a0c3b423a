"""Server-sent events in OpenAI's chunk format: ``data: {chunk}\\n\\n`` ... ``data: [DONE]``.

A stream of one query (``answer_chunks``):

1. a first chunk (chat: the assistant role) with ``system2: {"event": "started"}``;
2. progress while it runs, in chunks with an empty delta and a ``system2`` field:
   ``planned`` (models, strategy), ``progress`` (samples finished, the running vote
   tally, tokens so far), ``call_failed``;
3. the chosen answer's text as a content delta the moment it is decided (``decided``);
4. a last chunk with ``finish_reason``, ``usage`` and the ``system2`` summary; then
   ``[DONE]``. A query that failed ends with an ``{"error": ...}`` chunk instead.

``TokenDelta`` events of a single-path plan (``greedy``/``sample`` on one model: they
stream through the worker seam's ``generate_stream`` as the engine makes the tokens) go
out as content at once, and the decided text then only adds what they did not already
send.

``SSEResponse`` watches for the client leaving whatever the ASGI server's version, and
then stops the stream; its ``on_close`` runs however the response ends.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from orchestrator.events import (
    AnswerDecided,
    CallFinished,
    CandidatesMade,
    Planned,
    QueryEvent,
    TokenDelta,
)
from orchestrator.types import Answer
from system2.server.errors import error_body
from system2.server.openai_responses import (
    ResponseShape,
    finish_reason,
    system2_summary,
    usage_body,
)
from system2.server.query_run import QueryRun

__all__ = ["DONE", "SSEResponse", "answer_chunks", "sse"]

DONE = "data: [DONE]\n\n"

_SINGLE_PATH = frozenset({"greedy", "sample"})


def sse(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data, separators=(',', ':'))}\n\n"


class _Progress:
    """What the stream has told so far, and the chunks each event adds."""

    def __init__(self) -> None:
        self.tally: Counter[str] = Counter()
        self.samples = 0
        self.completion_tokens = 0
        self.single_path = False
        self.streamed = ""

    def system2(self, event: QueryEvent) -> dict[str, Any] | None:
        """The ``system2`` progress field ``event`` adds (None: nothing to say)."""
        if isinstance(event, Planned):
            self.single_path = event.strategy in _SINGLE_PATH and len(event.models) == 1
            return {"event": "planned", "models": list(event.models), "strategy": event.strategy}
        if isinstance(event, CallFinished):
            self.completion_tokens += event.completion_tokens
            if event.error is None:
                return None
            return {"event": "call_failed", "model": event.model, "error": event.error}
        if isinstance(event, CandidatesMade):
            self.samples = event.total
            self.tally.update(c.answer for c in event.candidates if c.answer is not None)
            return {
                "event": "progress",
                "samples": self.samples,
                "tally": dict(self.tally.most_common()),
                "completion_tokens": self.completion_tokens,
            }
        if isinstance(event, AnswerDecided):
            vote = None if event.vote is None else event.vote.model_dump(mode="json")
            return {"event": "decided", "answer": event.answer, "vote": vote}
        return None

    def content(self, event: QueryEvent) -> str | None:
        """The answer text ``event`` adds to the stream (None: none)."""
        if isinstance(event, TokenDelta) and self.single_path:
            self.streamed += event.text
            return event.text
        if isinstance(event, AnswerDecided):
            if not event.text.startswith(self.streamed):
                return None  # the streamed path is not the chosen one: keep what was sent
            rest = event.text[len(self.streamed) :]
            self.streamed = event.text
            return rest
        return None


async def answer_chunks(
    run: QueryRun,
    shape: ResponseShape,
    *,
    model: str,
    created: int,
    on_first_content: Callable[[], None] = lambda: None,
    on_answer: Callable[[Answer], None] = lambda answer: None,
) -> AsyncIterator[str]:
    """The SSE stream of ``run`` (see the module's docstring)."""
    qid = run.query_id

    def chunk(**fields: Any) -> str:
        return sse(shape.chunk(qid, model=model, created=created, **fields))

    progress = _Progress()
    started = {"event": "started", "query_id": qid}
    yield chunk(role=True, content="" if shape.chat else None, system2=started)
    sent_content = False
    while True:
        item = await run.next()
        if isinstance(item, Answer):
            break
        text = progress.content(item)
        if text:
            if not sent_content:
                on_first_content()
                sent_content = True
            yield chunk(content=text)
        note = progress.system2(item)
        if note is not None:
            yield chunk(system2=note)
    answer = item
    on_answer(answer)
    if answer.status == "failed":
        message = "; ".join(answer.trace.failures) or "the query failed"
        yield sse(error_body(message, type="server_error", code="query_failed"))
    else:
        yield chunk(
            finish=finish_reason(answer, run.decided),
            usage=usage_body(answer),
            system2=system2_summary(answer, model, trace=run.options.trace),
        )
    yield DONE


class SSEResponse(StreamingResponse):
    """An event stream that stops when the client disconnects (whatever the server's ASGI
    version), then awaits ``on_close``; ``on_close`` runs however the response ends."""

    media_type = "text/event-stream"

    def __init__(
        self, chunks: AsyncIterator[str], *, on_close: Callable[[], Awaitable[None]]
    ) -> None:
        super().__init__(chunks, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            async with anyio.create_task_group() as group:

                async def stream() -> None:
                    await self.stream_response(send)
                    group.cancel_scope.cancel()

                group.start_soon(stream)
                await self.listen_for_disconnect(receive)
                group.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await self._on_close()
