"""``system2 serve``: an OpenAI-compatible reasoning server over a config's profiles.

``create_app(config)`` is the ASGI app (FastAPI); ``serve(...)`` runs it on uvicorn with
the SIGTERM drain. Each profile (``profiles:`` in the YAML; ``default`` when there are
none) is a model id: ``POST /v1/chat/completions`` with ``model="math-sc5"`` runs that
profile's policy and strategy, ``extra_body={"system2": {...}}`` adjusts it per request.
"""

from __future__ import annotations

from system2.server.app import create_app
from system2.server.auth import ApiKeys

__all__ = ["ApiKeys", "create_app"]
