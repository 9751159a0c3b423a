"""What every handler of one server shares: the config, the served profiles, admission,
metrics and tracing (``app.state.system2``)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from system2.config import System2Config
from system2.server.admission import Admission
from system2.server.auth import ApiKeys
from system2.server.errors import APIError
from system2.server.metrics import ServerMetrics
from system2.server.profiles import ProfileRuntime, ServedModels
from system2.server.tracing import Tracing

__all__ = ["ServerState"]


@dataclass
class ServerState:
    config: System2Config
    served: ServedModels
    admission: Admission
    metrics: ServerMetrics
    tracing: Tracing
    keys: ApiKeys
    created: int = field(default_factory=lambda: int(time.time()))

    def runtime(self, model: str) -> ProfileRuntime:
        """The profile a request's ``model`` names; unknown: 404 listing the served ones."""
        try:
            return self.served.profiles[model]
        except KeyError:
            known = ", ".join(sorted(self.served.profiles))
            raise APIError(
                404,
                f"The model {model!r} does not exist; served models (profiles): {known}",
                param="model",
                code="model_not_found",
            ) from None

    def profile_label(self, model: object) -> str:
        """``model`` as a metrics label: a served profile's name, else ``unknown`` (so
        clients cannot grow the label set)."""
        return model if isinstance(model, str) and model in self.served.profiles else "unknown"
