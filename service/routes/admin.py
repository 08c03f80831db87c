"""Administration: reload the models directory while serving (needs the API key)."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse

from service.deps import AUTH, SettingsDep, not_ready
from service.reloads import reload_models
from service.schemas import Problem, ReloadOut

router = APIRouter(tags=["admin"], dependencies=AUTH)


@router.post(
    "/admin/reload",
    response_model=ReloadOut,
    responses={
        401: {"model": Problem, "description": "missing or wrong API key"},
        403: {"model": Problem, "description": "admin endpoints are off: NLD_API_KEY is unset"},
        422: {"model": ReloadOut, "description": "a model failed to load; its old version serves"},
        503: {"model": Problem, "description": "models still loading, or the session store down"},
    },
    summary="Reload the models directory",
    description="Reloads every model whose weights changed (and drops those removed), in this "
    "process and, through the shared session store, in every other worker. A model that "
    "fails to load keeps its old version serving (422 with why); sessions started on a "
    "replaced version get 409. Needs NLD_API_KEY to be set, and the key.",
)
async def reload(request: Request, settings: SettingsDep) -> JSONResponse:
    if settings.api_key is None:
        raise HTTPException(403, "admin endpoints are off: set NLD_API_KEY to enable them")
    if not request.app.state.registry.ready:
        raise not_ready("models are still loading: reload when /readyz is 200", 5)
    report = await reload_models(request.app)
    request.app.state.generation = await request.app.state.sessions.bump_generation()
    body = ReloadOut(ok=not report.failed, **asdict(report))
    return JSONResponse(body.model_dump(), status_code=422 if report.failed else 200)
