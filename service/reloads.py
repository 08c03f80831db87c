"""Reloading the models directory while serving, in every worker; and the session store's
state as `/readyz` reports it.

The admin endpoint reloads its own process and bumps a generation counter in the session
store; every other process sharing the store reads the counter every `reload_poll_seconds`
and reloads when it changed. That read is also the store's health check: `/readyz` reports
its last outcome without waiting on the store. A model that fails to load leaves its old
version serving.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from service.config import Settings
from service.registry import Registry, ReloadReport, pick_default, reload_all
from service.sessions import SessionStore, StoreUnavailable

log = logging.getLogger("nld.service")


async def reload_models(app: FastAPI) -> ReloadReport:
    """Reload the models directory in this process (one reload at a time)."""
    settings: Settings = app.state.settings
    async with app.state.reload_lock:
        reg: Registry = app.state.registry
        report = await run_in_threadpool(reload_all, reg, settings)
        pick_default(reg, settings)
    log.info("reload: %s", report)
    return report


async def watch_store(app: FastAPI, stop: asyncio.Event) -> None:
    """Read the store's reload generation every `reload_poll_seconds` until `stop`: record
    whether the store answers (for /readyz), and reload when another process announced a
    reload. (`stop`, not cancellation, ends it: the Redis client can swallow a
    cancellation that arrives while it connects.)"""
    settings: Settings = app.state.settings
    store: SessionStore = app.state.sessions
    while not stop.is_set():
        try:
            generation = await store.generation()
        except StoreUnavailable as e:
            app.state.store_status = f"{store.kind}: {e}"
        else:
            app.state.store_status = f"{store.kind}: ok"
            # app.state.generation: the last one this process has loaded (None: none seen
            # yet; the admin endpoint sets it when this process announces a reload itself).
            if app.state.generation is None:
                app.state.generation = generation
            elif generation != app.state.generation and app.state.registry.ready:
                app.state.generation = generation
                await reload_models(app)
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), settings.reload_poll_seconds)
