"""Errors crossing the Ray boundary, both ways.

In a replica, a ``WorkerFailure`` (or ``UnsupportedRequest``) is re-raised as a
``ReplicaWorkerError``, which pickles (the workers' own errors take two arguments and do
not). At the caller, ``local_error`` turns what a handle call raised back into what an
in-process worker would have raised:

* the replica's ``ReplicaWorkerError``: the same ``WorkerFailure``/``UnsupportedRequest``;
* any other exception raised by the replica's code: that exception (the request's fault);
* Ray's own failures (a replica or node that died, a full queue, an unreachable
  deployment, a call cancelled elsewhere): a ``WorkerFailure``, which the pool retries.
"""

from __future__ import annotations

from typing import Literal

from ray.exceptions import RayError, RayTaskError
from ray.serve.exceptions import RayServeException

from workers.errors import UnsupportedRequest, WorkerFailure

__all__ = ["ReplicaWorkerError", "local_error"]


class ReplicaWorkerError(Exception):
    """A worker error raised in a replica, in a form that crosses processes."""

    def __init__(self, kind: Literal["failure", "unsupported"], model: str, reason: str) -> None:
        super().__init__(f"{kind} of model {model!r}: {reason}")
        self.kind: Literal["failure", "unsupported"] = kind
        self.model = model
        self.reason = reason

    def __reduce__(self) -> tuple[type[ReplicaWorkerError], tuple[str, str, str]]:
        return (type(self), (self.kind, self.model, self.reason))

    @classmethod
    def of(cls, exc: WorkerFailure) -> ReplicaWorkerError:
        kind: Literal["failure", "unsupported"] = (
            "unsupported" if isinstance(exc, UnsupportedRequest) else "failure"
        )
        return cls(kind, exc.model, exc.reason)

    def local(self) -> WorkerFailure:
        """The worker error raised in the replica, rebuilt."""
        if self.kind == "unsupported":
            return UnsupportedRequest(self.model, self.reason)
        return WorkerFailure(self.model, self.reason)


def local_error(exc: BaseException, model: str) -> BaseException:
    """What an in-process worker for ``model`` would have raised instead of ``exc`` (see
    the module's docstring); ``exc`` itself when it is none of Ray's."""
    if isinstance(exc, RayTaskError):
        cause = exc.cause
        if isinstance(cause, ReplicaWorkerError):
            return cause.local()
        if isinstance(cause, Exception) and not isinstance(cause, RayError):
            return cause
    if isinstance(exc, RayError | RayServeException):
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return WorkerFailure(model, f"ray: {type(exc).__name__}: {first_line}")
    return exc
