"""Reading an OpenAI-compatible server's JSON responses into seam types.

``ResponseReader`` reads the fields of one response; anything missing or mistyped is a
``WorkerFailure`` naming the field's path (``choices[1].logprobs.token_logprobs[3]``) and
the request it answered. ``read_completion`` (``/v1/completions``) and
``read_chat_completion`` (``/v1/chat/completions``) make a ``Completion`` of one choice,
``read_continuation`` a ``ContinuationScore`` of one echoed prompt, ``read_step_score`` a
P(correct) of one ``/pooling`` row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workers.base import Completion, ContinuationScore, FinishReason
from workers.errors import WorkerFailure

__all__ = [
    "ResponseReader",
    "read_chat_completion",
    "read_completion",
    "read_continuation",
    "read_step_score",
]

_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "eos": "stop",
    "length": "length",
    "tool_calls": "stop",
    "function_call": "stop",
    "content_filter": "stop",
}


@dataclass(frozen=True)
class ResponseReader:
    """Reads fields of one JSON response; anything missing or mistyped is a
    ``WorkerFailure`` naming the field's path and the request."""

    model: str
    what: str

    def fail(self, problem: str) -> WorkerFailure:
        return WorkerFailure(self.model, f"{problem} in the response to {self.what}")

    def field(self, obj: Any, key: str, path: str) -> Any:
        name = f"{path}.{key}" if path else key
        if not isinstance(obj, dict):
            raise self.fail(f"{path or 'the body'} is not an object, so no field {name}")
        if obj.get(key) is None:
            raise self.fail(f"missing field {name}")
        return obj[key]

    def obj(self, value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(f"{path} is not an object")
        return value

    def array(self, obj: Any, key: str, path: str) -> list[Any]:
        value = self.field(obj, key, path)
        if not isinstance(value, list):
            raise self.fail(f"{path + '.' if path else ''}{key} is not a list")
        return value

    def string(self, obj: Any, key: str, path: str) -> str:
        return self.string_at(self.field(obj, key, path), f"{path}.{key}" if path else key)

    def integer(self, obj: Any, key: str, path: str) -> int:
        return self.integer_at(self.field(obj, key, path), f"{path}.{key}" if path else key)

    def string_at(self, value: Any, path: str) -> str:
        if not isinstance(value, str):
            raise self.fail(f"{path} is not a string")
        return value

    def integer_at(self, value: Any, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(f"{path} is not an integer")
        return value

    def number_at(self, value: Any, path: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(f"{path} is not a number (got {value!r})")
        return float(value)

    def choices(self, data: Any, expected: int) -> list[Any]:
        """The ``choices`` list, ordered by ``index``, checked to hold exactly ``expected``."""
        choices = self.array(data, "choices", "")
        if len(choices) != expected:
            raise self.fail(f"{len(choices)} choices where {expected} were asked for")
        indexed = {}
        for i, choice in enumerate(choices):
            indexed[self.integer(choice, "index", f"choices[{i}]")] = choice
        if sorted(indexed) != list(range(expected)):
            raise self.fail(f"choice indexes {sorted(indexed)} are not 0..{expected - 1}")
        return [indexed[i] for i in range(expected)]


def read_completion(r: ResponseReader, choice: Any, path: str) -> Completion:
    lp = r.field(choice, "logprobs", path)
    values = r.array(lp, "token_logprobs", f"{path}.logprobs")
    logprobs = tuple(
        r.number_at(v, f"{path}.logprobs.token_logprobs[{j}]") for j, v in enumerate(values)
    )
    return Completion(
        text=r.string(choice, "text", path),
        token_ids=_token_ids(r, choice, path),
        logprobs=logprobs,
        finish_reason=_finish(r, choice, path),
    )


def read_chat_completion(r: ResponseReader, choice: Any, path: str) -> Completion:
    message = r.field(choice, "message", path)
    content = r.array(r.field(choice, "logprobs", path), "content", f"{path}.logprobs")
    logprobs = tuple(
        r.number_at(
            r.field(item, "logprob", f"{path}.logprobs.content[{j}]"),
            f"{path}.logprobs.content[{j}].logprob",
        )
        for j, item in enumerate(content)
    )
    return Completion(
        text=r.string(message, "content", f"{path}.message"),
        token_ids=_token_ids(r, choice, path),
        logprobs=logprobs,
        finish_reason=_finish(r, choice, path),
    )


def _token_ids(r: ResponseReader, choice: Any, path: str) -> tuple[int, ...]:
    ids = choice.get("token_ids")
    if ids is None:
        return ()  # the server does not return ids (no vLLM return_token_ids)
    if not isinstance(ids, list):
        raise r.fail(f"{path}.token_ids is not a list")
    return tuple(r.integer_at(i, f"{path}.token_ids[{j}]") for j, i in enumerate(ids))


def _finish(r: ResponseReader, choice: Any, path: str) -> FinishReason:
    reason = r.string(choice, "finish_reason", path)
    if reason not in _FINISH:
        raise r.fail(f"{path}.finish_reason is {reason!r}, not stop or length")
    return _FINISH[reason]


def read_continuation(
    r: ResponseReader, choice: Any, path: str, prompt_len: int, text: str, generated: int
) -> ContinuationScore:
    """Sum the echoed log-probs of the tokens at or after the prompt's end in ``text``."""
    lp = r.obj(r.field(choice, "logprobs", path), f"{path}.logprobs")
    where = f"{path}.logprobs"
    tokens = [
        r.string_at(t, f"{where}.tokens[{j}]") for j, t in enumerate(r.array(lp, "tokens", where))
    ]
    offsets = r.array(lp, "text_offset", where)
    values = r.array(lp, "token_logprobs", where)
    if not len(tokens) == len(offsets) == len(values):
        raise r.fail(f"{where}: tokens, text_offset and token_logprobs differ in length")
    echoed = len(tokens) - generated
    if echoed < 1:
        raise r.fail(f"{where}: no echoed prompt tokens (was echo ignored?)")
    joined = "".join(tokens[:echoed])
    # Text the server puts before the prompt (a BOS token such as "<s>") shifts offsets.
    shift = len(joined) - len(text) if joined.endswith(text) else 0
    picked = [
        j
        for j in range(echoed)
        if r.integer_at(offsets[j], f"{where}.text_offset[{j}]") - shift >= prompt_len
    ]
    logprobs = tuple(r.number_at(values[j], f"{where}.token_logprobs[{j}]") for j in picked)
    ids = choice.get("prompt_token_ids") if isinstance(choice, dict) else None
    token_ids: tuple[int, ...] = ()
    if isinstance(ids, list) and len(ids) == echoed:
        token_ids = tuple(r.integer_at(ids[j], f"{path}.prompt_token_ids[{j}]") for j in picked)
    return ContinuationScore(token_ids=token_ids, token_logprobs=logprobs)


def read_step_score(r: ResponseReader, row: Any, path: str) -> float:
    if isinstance(row, list):
        if not row:
            raise r.fail(f"{path} is an empty list")
        return r.number_at(row[-1], f"{path}[{len(row) - 1}]")
    return r.number_at(row, path)
