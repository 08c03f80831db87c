"""The FastAPI app: `create_app(settings)`; `uvicorn --factory service.main:create_app`."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import signal
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import FrameType
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
from service.reloads import follow_reloads, pick_default
from service.routes import admin, health, landscape, models, sample, segment
from service.sessions import KeyedLocks, MemorySessionStore, SessionStore, StoreUnavailable

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


def open_store(settings: Settings) -> SessionStore:
    if settings.session_store == "memory":
        return MemorySessionStore(settings.session_ttl_seconds, settings.max_sessions)
    from service.redis_sessions import RedisSessionStore

    return RedisSessionStore(
        settings.session_store,
        settings.session_ttl_seconds,
        settings.max_sessions,
        timeout=settings.store_timeout_seconds,
        prefix=settings.session_key_prefix,
    )


async def _store_down(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "1"})


def _drain_on_sigterm(app: FastAPI) -> None:
    """On SIGTERM, answer 503 on /readyz for `drain_seconds` (so balancers stop sending),
    then hand the signal to uvicorn, which finishes the requests in flight and exits."""
    if threading.current_thread() is not threading.main_thread():
        return  # not under a server (tests)
    loop = asyncio.get_running_loop()
    previous = signal.getsignal(signal.SIGTERM)
    delay = app.state.settings.drain_seconds

    def handle(sig: int, frame: FrameType | None) -> None:
        if app.state.draining or not callable(previous):
            signal.signal(signal.SIGTERM, previous)
            signal.raise_signal(sig)
            return
        app.state.draining = True
        log.info("SIGTERM: draining for %g s", delay)
        loop.call_soon_threadsafe(loop.call_later, delay, previous, sig, frame)

    signal.signal(signal.SIGTERM, handle)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        torch.set_num_threads(settings.threads)
        store: SessionStore = app.state.sessions
        try:
            app.state.generation = await store.generation()
        except StoreUnavailable as e:
            log.error("%s: streaming answers 503 until it is back", e)
        reg = await run_in_threadpool(
            load_all,
            settings.models_dir,
            chains=settings.analysis_chains,
            steps=settings.analysis_steps,
        )
        pick_default(reg, settings)
        reg.ready = True
        app.state.registry = reg
        log.info("ready: %s (failed: %s)", sorted(reg.models), reg.failed)
        _drain_on_sigterm(app)
        # Other processes share the store: follow the reloads they announce through it.
        follower = None if store.kind == "memory" else asyncio.create_task(follow_reloads(app))
        try:
            yield
        finally:
            if follower is not None:
                follower.cancel()
            await store.aclose()

    app = FastAPI(
        title="nld",
        description="Neural Langevin Dynamics models: streaming segmentation by basins of a "
        "learned energy, the landscape's minima, occupancies and transitions, prior samples.",
        version="0.1.0",
        lifespan=lifespan,
        max_body_size=settings.max_body_bytes,  # 413 as the body arrives, before parsing
    )
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(StoreUnavailable, _store_down)
    app.state.settings = settings
    app.state.registry = Registry()  # not ready until the lifespan has loaded the models
    app.state.sessions = open_store(settings)
    app.state.session_locks = KeyedLocks()
    app.state.reload_lock = asyncio.Lock()
    app.state.generation = 0
    app.state.draining = False
    app.state.metrics = Metrics()
    app.add_middleware(_Instrument, metrics=app.state.metrics)
    routers = (health, models, segment, landscape, sample, admin)
    for r in routers:
        app.include_router(r.router)
    return app
