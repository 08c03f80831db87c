"""The FastAPI app: `create_app(settings)`; `uvicorn --factory service.main:create_app`.

Nothing here imports torch: the app answers (`/healthz`, and 503 with Retry-After
elsewhere) while its models load in the background (`service.registry`).
"""

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

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from nld.errors import NonFiniteError
from service.config import Settings
from service.metrics import Metrics
from service.middleware import BodyDeadline, Instrument
from service.registry import Registry, begin, load_in_background
from service.reloads import watch_store
from service.routes import (
    admin,
    docs,
    health,
    landscape,
    models,
    recording,
    sample,
    segment,
    ui,
)
from service.sessions import KeyedLocks, MemorySessionStore, SessionStore, StoreUnavailable

log = logging.getLogger("nld.service")
ECHO = 80  # characters of a rejected input an error body repeats, at most
DETAIL = 1000  # characters of an error message, at most
SHOWN_ERRORS = 3  # validation errors summarised in `detail`


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


def _echo(value: Any) -> Any:
    """A rejected input as an error body repeats it: as sent if short, else a prefix of its
    JSON (non-finite floats, which a request may hold, as strings)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    text = json.dumps(value, default=str, allow_nan=True)
    if len(text) <= ECHO and "NaN" not in text and "Infinity" not in text:
        return value
    return clip(text, ECHO)


def _where(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:] or parts
    return ".".join(parts) or "request"


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    """422 with a readable `detail` and the structured `errors`."""
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        | ({"input": _echo(jsonable_encoder(e["input"]))} if "input" in e else {})
        for e in exc.errors()
    ]
    shown = "; ".join(f"{_where(e['loc'])}: {e['msg']}" for e in errors[:SHOWN_ERRORS])
    more = len(errors) - SHOWN_ERRORS
    detail = "invalid request: " + shown + (f" (and {more} more)" if more > 0 else "")
    return JSONResponse({"detail": clip(detail, DETAIL), "errors": errors}, status_code=422)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    """Every HTTP error: `detail` is one message (bounded), whatever raised it."""
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail, default=str)
    return JSONResponse(
        {"detail": clip(detail, DETAIL)}, status_code=exc.status_code, headers=exc.headers
    )


async def _store_down(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "1"})


async def _non_finite(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=422)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    """A bug of ours: logged with its traceback, answered with the same body as every error
    (and nothing of its internals)."""
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"detail": "internal error: the service's log has the details"}, 500)


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
        # Listing the models directory is all that happens before the server accepts
        # connections; loading them, and watching the store, go on in the background.
        reg: Registry = app.state.registry
        stop = asyncio.Event()
        tasks = []
        if not reg.started:  # else a second lifespan of this app: its models load already
            dirs = begin(reg, settings)
            tasks.append(asyncio.create_task(load_in_background(reg, settings, dirs)))
        if app.state.sessions.kind != "memory":
            tasks.append(asyncio.create_task(watch_store(app, stop)))
        _drain_on_sigterm(app)
        try:
            yield
        finally:
            stop.set()
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=settings.store_timeout_seconds + 1)
            await app.state.sessions.aclose()

    app = FastAPI(
        title="nld",
        summary="Neural Langevin Dynamics models as a service.",
        description=docs.DESCRIPTION,
        version="0.1.0",
        lifespan=lifespan,
        max_body_size=settings.max_body_bytes,  # 413 as the body arrives, before parsing
        docs_url=None,  # served from the package by service.routes.docs, not from a CDN
        redoc_url=None,
        openapi_url=None,
        openapi_tags=docs.TAGS,
    )
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(StoreUnavailable, _store_down)
    app.add_exception_handler(NonFiniteError, _non_finite)
    app.add_exception_handler(Exception, _unexpected)
    app.state.settings = settings
    app.state.registry = Registry()  # filled by the lifespan
    app.state.sessions = open_store(settings)
    app.state.store_status = (
        "memory: ok" if app.state.sessions.kind == "memory" else "redis: not reached yet"
    )
    app.state.session_locks = KeyedLocks()
    app.state.reload_lock = asyncio.Lock()
    app.state.generation = None if app.state.sessions.kind != "memory" else 0
    app.state.draining = False
    app.state.metrics = Metrics()
    app.add_middleware(BodyDeadline, seconds=settings.request_read_timeout_seconds)
    app.add_middleware(Instrument, metrics=app.state.metrics)
    for r in (health, models, segment, recording, landscape, sample, admin, docs, ui):
        app.include_router(r.router)
    app.include_router(ui.page)
    docs.mount_assets(app)
    ui.mount(app)
    return app
