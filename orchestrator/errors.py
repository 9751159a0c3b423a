"""Errors the orchestrator raises while running a query.

OrchestratorError
├── UnknownWorkerError    a strategy asked for a model with no worker (lists the known ones);
│                         also a ``KeyError``
└── NoStepVerifierError   a strategy asked for the step verifier and none was given;
                          also a ``LookupError``

A worker that fails raises ``workers.errors.WorkerFailure`` (``UnsupportedRequest`` when it
lacks what the request needs): the ``Orchestrator`` catches it and answers with
``status="failed"`` and the reason in ``trace.failures``. Everything else a caller can get
wrong (an unknown strategy or reranker kind, an empty candidate set, a malformed matrix) is
a plain ``ValueError`` raised where the bad value is given.
"""

from __future__ import annotations

__all__ = ["NoStepVerifierError", "OrchestratorError", "UnknownWorkerError"]


class OrchestratorError(Exception):
    """Base of the errors defined by the orchestrator."""


class UnknownWorkerError(OrchestratorError, KeyError):
    def __init__(self, model: str, known: list[str]) -> None:
        super().__init__(f"no worker for model {model!r}; configured: {', '.join(known)}")


class NoStepVerifierError(OrchestratorError, LookupError):
    def __init__(self) -> None:
        super().__init__(
            "this strategy asks for a step verifier (vote or value 'verifier') but the "
            "orchestrator has none: declare a top-level `step_verifier:` in the config"
        )
