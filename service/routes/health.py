"""Liveness, readiness and Prometheus metrics (open even when an API key is set)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.schemas import Problem

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"model": Problem, "description": "not ready"}})
async def readyz(request: Request) -> JSONResponse:
    reg = request.app.state.registry
    body = {
        "ready": bool(reg.ready and reg.models),
        "models": sorted(reg.models),
        "failed": reg.failed,
    }
    return JSONResponse(body, status_code=200 if body["ready"] else 503)


@router.get("/metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    m = request.app.state.metrics
    store = request.app.state.sessions
    m.sessions.set(len(store))
    m.evictions.set(store.evictions)
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)
