"""Liveness, readiness and Prometheus metrics (open even when an API key is set)."""

from __future__ import annotations

import os

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from service.schemas import Problem
from service.sessions import StoreUnavailable

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"model": Problem, "description": "not ready"}})
async def readyz(request: Request) -> JSONResponse:
    """Ready when models are loaded and the process is not draining. The session store's
    state is reported but does not make the process unready: without it only streaming
    fails (503), and the stateless endpoints still serve."""
    state = request.app.state
    reg = state.registry
    store = state.sessions
    try:
        await store.ping()
        sessions = f"{store.kind}: ok"
    except StoreUnavailable as e:
        sessions = f"{store.kind}: {e}"
    body = {
        "ready": bool(reg.ready and reg.models and not state.draining),
        "draining": state.draining,
        "models": {name: lm.version for name, lm in sorted(reg.models.items())},
        "failed": reg.failed,
        "sessions": sessions,
        "pid": os.getpid(),  # which worker answered
    }
    return JSONResponse(body, status_code=200 if body["ready"] else 503)


@router.get("/metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    m = request.app.state.metrics
    store = request.app.state.sessions
    try:
        m.sessions.set(await store.count())
        m.evictions.set(await store.evictions())
    except StoreUnavailable:
        pass  # the gauges keep their last values; the store's outage shows on /readyz
    return Response(m.exposition(), media_type=CONTENT_TYPE_LATEST)
