"""Which generated tokens a completion cut at a stop string keeps, from the tokens' texts
(used by the HTTP and in-process vLLM backends).

An OpenAI-compatible server cuts the returned text before the stop string, but its token
ids, log-probs and ``completion_tokens`` still hold the stop string's tokens (vLLM stops on
the token that completes it). ``tokens_before_stop`` finds the earliest-ending stop string
in the tokens' texts joined and keeps the tokens that start before it: the token the
returned text ends inside (a stop string starting mid-token) is kept, as in
``workers.decoding``.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["tokens_before_stop"]


def tokens_before_stop(pieces: Sequence[str], stops: Sequence[str]) -> int | None:
    """How many of the tokens (``pieces[i]``: token i's text) start before the stop string
    that ends earliest in their joined text (ties: the first in ``stops``); None if none
    occurs.

    >>> tokens_before_stop(["a", "b.", "c"], ["."])
    2
    >>> tokens_before_stop(["a", "b", ".\\n"], ["."]), tokens_before_stop(["a"], ["."])
    (2, None)
    """
    joined = "".join(pieces)
    found: tuple[int, int] | None = None  # (end, start) of the earliest-ending stop
    for stop in stops:
        at = joined.find(stop) if stop else -1
        if at >= 0 and (found is None or at + len(stop) < found[0]):
            found = (at + len(stop), at)
    if found is None:
        return None
    keep, offset = 0, 0
    for piece in pieces:
        if offset >= found[1]:
            break
        keep, offset = keep + 1, offset + len(piece)
    return keep
