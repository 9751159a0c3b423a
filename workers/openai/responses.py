"""Reading an OpenAI-compatible server's JSON responses into seam types.

``ResponseReader`` reads the fields of one response; anything missing or mistyped is a
``WorkerFailure`` naming the field's path (``choices[1].logprobs.token_logprobs[3]``) and
the request it answered. ``read_completion`` (``/v1/completions``) and
``read_chat_completion`` (``/v1/chat/completions``) make a ``Completion`` of one choice (a
text cut at a stop string keeps only its own tokens: ``workers.stops``),
``read_continuation`` a ``ContinuationScore`` from one token-id prompt's
``prompt_logprobs``, ``read_step_score`` a P(correct) of one ``/pooling`` row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from workers.base import Completion, ContinuationScore, FinishReason, TokenAlternative
from workers.errors import WorkerFailure
from workers.stops import tokens_before_stop

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


def read_completion(
    r: ResponseReader, choice: Any, path: str, stops: Sequence[str]
) -> tuple[Completion, int]:
    """One ``/v1/completions`` choice, cut at a stop string (``_trim_at_stop``), and how
    many tokens the cut dropped."""
    where = f"{path}.logprobs"
    lp = r.field(choice, "logprobs", path)
    values = r.array(lp, "token_logprobs", where)
    logprobs = tuple(r.number_at(v, f"{where}.token_logprobs[{j}]") for j, v in enumerate(values))
    pieces = lp.get("tokens") if isinstance(lp, dict) else None
    completion = Completion(
        text=r.string(choice, "text", path),
        token_ids=_token_ids(r, choice, path),
        logprobs=logprobs,
        finish_reason=_finish(r, choice, path),
    )
    return _trim_at_stop(r, completion, pieces, stops, f"{where}.tokens")


def read_chat_completion(
    r: ResponseReader, choice: Any, path: str, stops: Sequence[str]
) -> tuple[Completion, int]:
    """One ``/v1/chat/completions`` choice, as ``read_completion``."""
    message = r.field(choice, "message", path)
    where = f"{path}.logprobs.content"
    content = r.array(r.field(choice, "logprobs", path), "content", f"{path}.logprobs")
    logprobs = tuple(
        r.number_at(r.field(item, "logprob", f"{where}[{j}]"), f"{where}[{j}].logprob")
        for j, item in enumerate(content)
    )
    pieces: list[Any] | None = [item.get("token") for item in content]
    if pieces is not None and None in pieces:
        pieces = None  # a server that does not name the tokens: nothing can be cut
    completion = Completion(
        text=r.string(message, "content", f"{path}.message"),
        token_ids=_token_ids(r, choice, path),
        logprobs=logprobs,
        finish_reason=_finish(r, choice, path),
    )
    return _trim_at_stop(r, completion, pieces, stops, f"{where}[].token")


def _trim_at_stop(
    r: ResponseReader, completion: Completion, pieces: Any, stops: Sequence[str], path: str
) -> tuple[Completion, int]:
    """``completion`` keeping only the tokens of its text when a stop string cut it
    (``workers.stops``; ``pieces``: the tokens' texts as the server shows them,
    one per log-prob), and how many tokens that dropped. Without pieces nothing is cut."""
    if completion.finish_reason != "stop" or not stops or pieces is None:
        return completion, 0
    if not isinstance(pieces, list) or len(pieces) != len(completion.logprobs):
        raise r.fail(f"{path} is not one string per token log-prob")
    keep = tokens_before_stop([r.string_at(p, path) for p in pieces], stops)
    if keep is None or keep == len(pieces):
        return completion, 0
    if completion.token_ids and len(completion.token_ids) != len(pieces):
        raise r.fail(f"{len(completion.token_ids)} token ids for {len(pieces)} tokens at {path}")
    trimmed = completion.model_copy(
        update={"token_ids": completion.token_ids[:keep], "logprobs": completion.logprobs[:keep]}
    )
    return trimmed, len(pieces) - keep


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
    r: ResponseReader, choice: Any, path: str, prompt_len: int, ids: Sequence[int], k: int
) -> ContinuationScore:
    """The scores of continuation ``ids``, which follow ``prompt_len`` prompt tokens in the
    choice's token-id prompt, from vLLM's ``prompt_logprobs``: one entry per prompt position
    (None at position 0), each an object ``{"<token id>": {"logprob", "rank",
    "decoded_token"}}`` holding the prompt's token there and, with ``k > 0``, the ``k``
    tokens of rank 1..k (kept, most probable first, as the top alternatives)."""
    where = f"{path}.prompt_logprobs"
    positions = r.array(choice, "prompt_logprobs", path)
    if len(positions) != prompt_len + len(ids):
        raise r.fail(f"{where} has {len(positions)} positions for {prompt_len + len(ids)} tokens")
    values, alternatives = [], []
    for j, token in enumerate(ids):
        at = f"{where}[{prompt_len + j}]"
        entry = r.obj(positions[prompt_len + j], at)
        chosen = r.field(entry, str(token), at)
        values.append(
            r.number_at(r.field(chosen, "logprob", f"{at}.{token}"), f"{at}.{token}.logprob")
        )
        if k:
            alternatives.append(_top_alternatives(r, entry, k, at))
    return ContinuationScore(
        token_ids=tuple(ids), token_logprobs=tuple(values), top_alternatives=tuple(alternatives)
    )


def _top_alternatives(
    r: ResponseReader, entry: dict[str, Any], k: int, path: str
) -> tuple[TokenAlternative, ...]:
    """The entries of rank 1..k, most probable first."""
    ranked = []
    for key, item in entry.items():
        rank = r.integer_at(r.field(item, "rank", f"{path}.{key}"), f"{path}.{key}.rank")
        if rank <= k:
            logprob = r.number_at(
                r.field(item, "logprob", f"{path}.{key}"), f"{path}.{key}.logprob"
            )
            ranked.append((-logprob, rank, _token_key(r, key, path), logprob))
    return tuple(TokenAlternative(token_id=t, logprob=lp) for _, _, t, lp in sorted(ranked)[:k])


def _token_key(r: ResponseReader, key: str, path: str) -> int:
    try:
        return int(key)
    except ValueError:
        raise r.fail(f"{path} has the key {key!r}, not a token id") from None


def read_step_score(r: ResponseReader, row: Any, path: str) -> float:
    if isinstance(row, list):
        if not row:
            raise r.fail(f"{path} is an empty list")
        return r.number_at(row[-1], f"{path}[{len(row) - 1}]")
    return r.number_at(row, path)
