"""Liveness and readiness (open even when an API key is set), and Prometheus metrics."""

from __future__ import annotations

import os

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from service.deps import AUTH
from service.schemas import Health, Problem, Readiness
from service.sessions import StoreUnavailable

router = APIRouter(tags=["health"])


@router.get(
    "/healthz",
    summary="Liveness",
    description="200 as soon as the process serves HTTP, whether or not its models are loaded "
    "yet: restart the process only when this fails.",
)
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Readiness",
    description="200 when every model of the models directory is loaded (or has failed to "
    "load, see `failed`) and at least one serves, and the process is not draining after "
    "SIGTERM; else 503 with the same body, whose `loading` says what each model still waits "
    "for. Send traffic only while this is 200. The session store's state is reported as last "
    "seen (it is read in the background, never waited on here) and does not make the process "
    "unready: without the store only streaming fails.",
    responses={503: {"model": Readiness, "description": "not ready: loading or draining"}},
)
async def readyz(request: Request) -> JSONResponse:
    state = request.app.state
    reg = state.registry
    body = Readiness(
        ready=bool(reg.ready and reg.models and not state.draining),
        draining=state.draining,
        models={name: lm.version for name, lm in sorted(reg.models.items())},
        loading={name: s.describe() for name, s in sorted(reg.loading.items())},
        failed=reg.failed,
        sessions=state.store_status,
        pid=os.getpid(),
    )
    headers = {} if body.ready else {"Retry-After": "1"}
    return JSONResponse(body.model_dump(), status_code=200 if body.ready else 503, headers=headers)


@router.get(
    "/metrics",
    response_class=Response,
    dependencies=AUTH,
    summary="Prometheus metrics",
    description="Requests by method, route and status, latencies by route, open sessions, "
    "session evictions and labelled observations, in Prometheus' text format; summed over "
    "the workers of `nld serve --workers N`. With an API key set it needs the key: Prometheus "
    "sends it with `authorization: {credentials_file: FILE}` in its scrape config.",
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "the metrics"},
        401: {"model": Problem, "description": "missing or wrong API key"},
    },
)
async def metrics(request: Request) -> Response:
    m = request.app.state.metrics
    store = request.app.state.sessions
    try:
        m.sessions.set(await store.count())
        m.evictions.set(await store.evictions())
    except StoreUnavailable:
        pass  # the gauges keep their last values; the store's outage shows on /readyz
    return Response(m.exposition(), media_type=CONTENT_TYPE_LATEST)
