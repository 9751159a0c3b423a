"""Worker and catalog errors survive pickling (Ray and process pools ship them back to the
caller): same type, same fields, same message."""

from __future__ import annotations

import pickle

import pytest

from workers.errors import (
    ChecksumMismatchError,
    ModelNotPulledError,
    UnknownModelError,
    UnsupportedRequest,
    WorkerFailure,
)
from workers.openai.http import RequestRejected
from workers.pool_tries import StreamTimedOut

ERRORS = [
    WorkerFailure("m", "engine died"),
    UnsupportedRequest("m", "no verifier"),
    StreamTimedOut("m", "deadline passed"),
    RequestRejected("m", "bad request", 400),
    UnknownModelError("x", ["b", "a"]),
    ModelNotPulledError("x", "no converted model in /tmp"),
    ChecksumMismatchError("/tmp/f", "aa", "bb"),
]


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
def test_error_round_trips_through_pickle(error: Exception) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert vars(copy) == vars(error)
