"""The program that runs inside each sandbox (standard library only; copied into the
sandbox's directory and run with ``python -I``). It first lowers its own resource limits,
then plays one of three roles:

* ``run PROGRAM``: run a script (``run_python``).
* ``serve PROGRAM ENTRY REQ_FD RESP_FD``: load the candidate's code and answer calls of
  ``ENTRY``, one JSON line per call, arguments and results in the value codec below.
* ``check TESTS ENTRY REQ_FD RESP_FD``: read the run's nonce from stdin, run the tests'
  ``check(candidate)`` with ``candidate`` a proxy that forwards each call to the candidate's
  sandbox, and print the nonce only after ``check`` returned.

The candidate's code never runs in the checker's process (a separate sandbox with its own
PID namespace), so it can neither see the nonce nor patch the checker; the most it can do
is answer calls, or not.
"""

from __future__ import annotations

import builtins
import json
import os
import resource
import runpy
import sys
from typing import Any

__all__ = ["decode", "encode", "main"]

MAX_MESSAGE_BYTES = 16 * 1024 * 1024


def encode(value: Any) -> Any:
    """A JSON-able form of a plain value that keeps its type (tuple, set, float ...)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return {"f": repr(value)}
    if isinstance(value, list):
        return {"l": [encode(v) for v in value]}
    if isinstance(value, tuple):
        return {"t": [encode(v) for v in value]}
    if isinstance(value, frozenset):
        return {"fs": [encode(v) for v in value]}
    if isinstance(value, set):
        return {"s": [encode(v) for v in value]}
    if isinstance(value, dict):
        return {"d": [[encode(k), encode(v)] for k, v in value.items()]}
    if isinstance(value, bytes):
        return {"b": value.hex()}
    raise TypeError(f"cannot pass a {type(value).__name__} across the sandbox")


def decode(data: Any) -> Any:
    """The value ``encode`` made ``data`` from; anything else is a ``ValueError``."""
    if data is None or isinstance(data, bool | int | str):
        return data
    if not isinstance(data, dict) or len(data) != 1:
        raise ValueError("malformed value")
    [(tag, body)] = data.items()
    if tag == "f" and isinstance(body, str):
        return float(body)
    if tag == "b" and isinstance(body, str):
        return bytes.fromhex(body)
    if not isinstance(body, list):
        raise ValueError("malformed value")
    if tag == "d":
        return {decode(k): decode(v) for k, v in body}
    items = [decode(v) for v in body]
    kinds: dict[str, Any] = {"l": list, "t": tuple, "s": set, "fs": frozenset}
    if tag not in kinds:
        raise ValueError(f"unknown value tag {tag!r}")
    return kinds[tag](items)


def _send(fd: int, message: dict[str, Any]) -> None:
    data = (json.dumps(message) + "\n").encode()
    while data:
        data = data[os.write(fd, data) :]


def _receive(stream: Any) -> dict[str, Any]:
    line = stream.readline(MAX_MESSAGE_BYTES + 1)
    if not line:
        raise EOFError("the other side closed the channel")
    if len(line) > MAX_MESSAGE_BYTES:
        raise ValueError("message over the size limit")
    message = json.loads(line)
    if not isinstance(message, dict):
        raise ValueError("malformed message")
    return message


def _serve(program: str, entry_point: str, req_fd: int, resp_fd: int) -> None:
    requests = os.fdopen(req_fd, "rb")
    namespace = runpy.run_path(program, run_name="__main__")
    function = namespace.get(entry_point)
    while True:
        try:
            args = decode(_receive(requests)["args"])
        except EOFError:
            return
        if not callable(function):
            _send(resp_fd, {"raise": "NameError", "message": f"{entry_point} is not defined"})
            continue
        try:
            reply = {"value": encode(function(*args))}
        except Exception as exc:
            reply = {"raise": type(exc).__name__, "message": str(exc)[:2000]}
        _send(resp_fd, reply)


class CandidateGone(Exception):
    """The candidate's sandbox stopped answering (it exited, crashed or broke the channel)."""


def _check(tests: str, entry_point: str, req_fd: int, resp_fd: int) -> None:
    nonce = sys.stdin.readline().strip()
    responses = os.fdopen(resp_fd, "rb")

    def candidate(*args: Any) -> Any:
        try:
            _send(req_fd, {"args": encode(list(args))})
            reply = _receive(responses)
        except (OSError, EOFError, ValueError) as exc:
            raise CandidateGone(f"candidate sandbox: {exc}") from None
        if "raise" in reply:
            kind = getattr(builtins, str(reply["raise"]), None)
            if not (isinstance(kind, type) and issubclass(kind, Exception)):
                kind = RuntimeError
            raise kind(f"{reply['raise']}: {reply.get('message', '')}")
        return decode(reply["value"])

    check = runpy.run_path(tests, run_name="__checks__")["check"]
    # Some tests also call the entry point by name (HumanEval/33): that is the candidate too.
    check.__globals__[entry_point] = candidate
    check(candidate)
    print(nonce, flush=True)


def _limit(memory_bytes: int, cpu_s: int, processes: int, file_bytes: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
    resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def main(argv: list[str]) -> None:
    limits, role, rest = argv[:4], argv[4], argv[5:]
    _limit(*(int(x) for x in limits))
    sys.argv = [rest[0]]
    if role == "run":
        runpy.run_path(rest[0], run_name="__main__")
    elif role == "serve":
        _serve(rest[0], rest[1], int(rest[2]), int(rest[3]))
    elif role == "check":
        _check(rest[0], rest[1], int(rest[2]), int(rest[3]))
    else:
        raise SystemExit(f"unknown role {role!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
