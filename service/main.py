"""The FastAPI app: `create_app(settings)`; `uvicorn --factory service.main:create_app`."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import torch
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from service.config import Settings
from service.metrics import Metrics
from service.registry import Registry, load_all
from service.routes import health, landscape, models, sample, segment
from service.sessions import MemorySessionStore

log = logging.getLogger("nld.service")


def _finite(obj: Any) -> Any:
    """A JSON-safe copy: non-finite floats (which a request may hold) become strings."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = jsonable_encoder(exc.errors(), custom_encoder={float: lambda v: v})
    # Echo small inputs only: a whole rejected array is noise in an error message.
    for e in errors:
        if len(json.dumps(_finite(e.get("input")), default=str)) > 200:
            e.pop("input", None)
        e.pop("ctx", None)
    return JSONResponse({"detail": _finite(errors)}, status_code=422)


class _Instrument:
    """`Metrics.middleware` in the class form `add_middleware` takes."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.wrapped = metrics.middleware(app)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.wrapped(scope, receive, send)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        torch.set_num_threads(settings.threads)
        reg = await run_in_threadpool(
            load_all,
            settings.models_dir,
            chains=settings.analysis_chains,
            steps=settings.analysis_steps,
        )
        names = sorted(reg.models)
        if settings.default_model is not None and settings.default_model not in reg.models:
            reg.failed.setdefault(settings.default_model, "the configured default is not loaded")
        reg.default = (
            settings.default_model
            if settings.default_model in reg.models
            else (names[0] if names else None)
        )
        reg.ready = True
        app.state.registry = reg
        log.info("ready: %s (failed: %s)", names, reg.failed)
        yield

    app = FastAPI(
        title="nld",
        description="Neural Langevin Dynamics models: streaming segmentation by basins of a "
        "learned energy, the landscape's minima, occupancies and transitions, prior samples.",
        version="0.1.0",
        lifespan=lifespan,
        max_body_size=settings.max_body_bytes,  # 413 as the body arrives, before parsing
    )
    app.add_exception_handler(RequestValidationError, _invalid)
    app.state.settings = settings
    app.state.registry = Registry()  # not ready until the lifespan has loaded the models
    app.state.sessions = MemorySessionStore(settings.session_ttl_seconds, settings.max_sessions)
    app.state.metrics = Metrics()
    app.add_middleware(_Instrument, metrics=app.state.metrics)
    for r in (health.router, models.router, segment.router, landscape.router, sample.router):
        app.include_router(r)
    return app
