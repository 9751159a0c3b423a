"""The FastAPI application of ``system2 serve``: OpenAI-compatible completions over the
config's profiles, plus ``/v1/models``, ``/health``, ``/ready`` and ``/metrics``.

``create_app(config)`` builds the workers (once, shared by every profile's orchestrator);
tests pass ``workers=`` (scripted ones) instead. Shutting the app down (its lifespan's
end) drains: nothing new is admitted, the admitted queries get up to
``server.drain_timeout_s`` to finish, then the workers are closed.

Example:
    >>> from system2.config import parse_config
    >>> config = parse_config({
    ...     "models": {"m": {"kind": "scripted", "responses": ["The answer is 4."]}},
    ...     "policy": {"kind": "fixed", "models": ["m"]},
    ... })
    >>> sorted(create_app(config).state.system2.served.profiles)
    ['default']
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from system2.config import System2Config
from system2.server.admission import Admission
from system2.server.auth import ApiKeys, AuthMiddleware
from system2.server.completions import CompletionEndpoint
from system2.server.errors import install_error_handlers
from system2.server.metrics import METRICS_CONTENT_TYPE, ServerMetrics
from system2.server.openai_requests import ChatCompletionRequest, CompletionRequest
from system2.server.openai_responses import CHAT, TEXT
from system2.server.profiles import ProfileRuntime, build_served_models
from system2.server.state import ServerState
from system2.server.tracing import Tracing, make_tracing
from workers.base import Worker

__all__ = ["CHAT_COMPLETIONS", "COMPLETIONS", "create_app", "drain"]

log = structlog.get_logger(__name__)

CHAT_COMPLETIONS = CompletionEndpoint("chat.completions", CHAT, ChatCompletionRequest)
COMPLETIONS = CompletionEndpoint("completions", TEXT, CompletionRequest)


def _model_card(name: str, runtime: ProfileRuntime, created: int) -> dict[str, Any]:
    profile = runtime.profile
    return {
        "id": name,
        "object": "model",
        "created": created,
        "owned_by": "system2",
        "system2": {
            "description": profile.description,
            "models": list(profile.policy.models),
            "policy": profile.policy.kind,
            "strategy": profile.planned_strategy.model_dump(mode="json"),
            "task": profile.task,
            "budget": profile.budget.model_dump(mode="json"),
        },
    }


async def drain(state: ServerState, timeout_s: float) -> bool:
    """Stop admitting and wait (at most ``timeout_s``) for the admitted queries to end;
    whether they all did."""
    state.admission.begin_drain()
    log.info("draining", running=state.admission.running, waiting=state.admission.waiting)
    drained = await state.admission.wait_idle(timeout_s)
    if not drained:
        log.warning("drain_timeout", running=state.admission.running)
    return drained


def create_app(
    config: System2Config,
    *,
    workers: Mapping[str, Worker] | None = None,
    api_keys: ApiKeys | None = None,
    tracing: Tracing | None = None,
) -> FastAPI:
    """The server's app for ``config`` (see the module's docstring)."""
    server = config.server
    state = ServerState(
        config=config,
        served=build_served_models(config, workers=workers),
        admission=Admission(max_running=server.max_running, max_waiting=server.max_waiting),
        metrics=ServerMetrics(),
        tracing=tracing or make_tracing(),
        keys=api_keys or ApiKeys(),
    )
    state.metrics.track_queue(lambda: state.admission.running, lambda: state.admission.waiting)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        log.info("serving", profiles=sorted(state.served.profiles), auth=bool(state.keys))
        yield
        await drain(state, server.drain_timeout_s)
        await state.served.close()
        state.tracing.shutdown()

    app = FastAPI(
        title="system2",
        summary="OpenAI-compatible reasoning server",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.system2 = state
    install_error_handlers(app)
    app.add_middleware(AuthMiddleware, keys=state.keys)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready")
    async def ready() -> JSONResponse:
        admission = state.admission
        body = {
            "ready": not admission.draining,
            "draining": admission.draining,
            "running": admission.running,
            "waiting": admission.waiting,
        }
        return JSONResponse(body, status_code=503 if admission.draining else 200)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(state.metrics.render(), media_type=METRICS_CONTENT_TYPE)

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        cards = [_model_card(n, r, state.created) for n, r in state.served.profiles.items()]
        return {"object": "list", "data": cards}

    @app.get("/v1/models/{model:path}")
    async def model(model: str) -> dict[str, Any]:
        return _model_card(model, state.runtime(model), state.created)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        return await CHAT_COMPLETIONS.handle(state, request)

    @app.post("/v1/completions")
    async def completions(request: Request) -> Response:
        return await COMPLETIONS.handle(state, request)

    return app
