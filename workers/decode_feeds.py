"""The decode loop's hooks for streamed rows: each token a streamed row makes goes to its
call's ``TokenFeed`` as it is chosen, and the row's ``Completion`` the moment the row is
done; a row whose reader left (its feed cancelled) is ended at its next token."""

from __future__ import annotations

from collections.abc import Sequence

from workers.base import Completion
from workers.decoding import DecodedRow, RowHook, TokenHook
from workers.streaming import TokenFeed

__all__ = ["StreamedRow", "completion_of", "feed_hooks"]

StreamedRow = tuple[TokenFeed, int]
"""A batch row streamed to a feed, as that call's sample index."""


def feed_hooks(rows: Sequence[StreamedRow | None]) -> tuple[TokenHook | None, RowHook | None]:
    """``decode_batch``'s ``on_token`` and ``on_row_done`` for a batch whose row i is
    streamed as ``rows[i]`` (None: not streamed); (None, None) when no row is."""
    if not any(rows):
        return None, None

    def on_token(row: int, token: int, logprob: float) -> bool:
        target = rows[row]
        if target is None:
            return True
        feed, sample = target
        if feed.cancelled:
            return False
        feed.put(sample, token, logprob)
        return True

    def on_row_done(row: int, decoded: DecodedRow) -> None:
        target = rows[row]
        if target is not None:
            feed, sample = target
            feed.finish(sample, completion_of(decoded))

    return on_token, on_row_done


def completion_of(decoded: DecodedRow) -> Completion:
    return Completion(
        text=decoded.text,
        token_ids=tuple(decoded.token_ids),
        logprobs=tuple(decoded.logprobs),
        finish_reason=decoded.finish_reason,
    )
