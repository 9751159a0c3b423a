"""Reading a vLLM engine's ``RequestOutput``s into seam types.

``read_completion``: one ``n=1`` generate request's text, token ids, the sampled tokens'
log-probs and why it stopped. The engine cuts the text before a stop string but keeps the
stop string's tokens: they are trimmed here (``workers.stops``), so token counts are those
of the returned text; EOS is kept.
``read_continuation``: the log-probs (and, with ``k > 0``, the top-k alternatives) of a
continuation's tokens, from a request's ``prompt_logprobs`` over prompt + continuation.
Anything missing is a ``WorkerFailure`` naming the model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from workers.base import Completion, ContinuationScore, FinishReason, TokenAlternative
from workers.errors import WorkerFailure
from workers.stops import tokens_before_stop

if TYPE_CHECKING:
    from vllm.outputs import RequestOutput

__all__ = ["read_completion", "read_continuation"]

_FINISH: dict[str, FinishReason] = {"stop": "stop", "length": "length"}


def read_completion(model_name: str, output: RequestOutput) -> Completion:
    """The one sample of a generate request's final output."""
    if len(output.outputs) != 1:
        raise WorkerFailure(model_name, f"{len(output.outputs)} outputs, not 1")
    choice = output.outputs[0]
    reason = _FINISH.get(str(choice.finish_reason))
    if reason is None:
        raise WorkerFailure(
            model_name, f"request {output.request_id} ended with {choice.finish_reason}"
        )
    token_ids = tuple(int(t) for t in choice.token_ids)
    logprobs = choice.logprobs
    if logprobs is None or len(logprobs) != len(token_ids):
        raise WorkerFailure(model_name, "vLLM returned no log-prob for some tokens")
    values = tuple(float(logprobs[j][t].logprob) for j, t in enumerate(token_ids))
    stop = choice.stop_reason
    if reason == "stop" and isinstance(stop, str) and stop:
        pieces = [logprobs[j][t].decoded_token or "" for j, t in enumerate(token_ids)]
        keep = tokens_before_stop(pieces, [stop])
        if keep is not None:
            token_ids, values = token_ids[:keep], values[:keep]
    return Completion(text=choice.text, token_ids=token_ids, logprobs=values, finish_reason=reason)


def read_continuation(
    model_name: str, output: RequestOutput, prompt_len: int, ids: tuple[int, ...], k: int
) -> ContinuationScore:
    """The scores of continuation ``ids``, which follow ``prompt_len`` prompt tokens in the
    scored request (``k``: how many top alternatives to keep per position)."""
    positions = output.prompt_logprobs
    if positions is None or len(positions) != prompt_len + len(ids):
        raise WorkerFailure(model_name, "vLLM returned no prompt log-probs")
    values, alternatives = [], []
    for j, token in enumerate(ids):
        entry = positions[prompt_len + j]
        if entry is None or token not in entry:
            raise WorkerFailure(model_name, f"no prompt log-prob at position {j}")
        values.append(float(entry[token].logprob))
        if k:
            top = sorted(
                (lp.rank, t, float(lp.logprob))
                for t, lp in entry.items()
                if lp.rank is not None and lp.rank <= k
            )
            alternatives.append(
                tuple(TokenAlternative(token_id=t, logprob=v) for _, t, v in top[:k])
            )
    return ContinuationScore(
        token_ids=ids, token_logprobs=tuple(values), top_alternatives=tuple(alternatives)
    )
