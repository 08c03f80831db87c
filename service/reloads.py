"""Reloading the models directory while serving, in every worker.

The admin endpoint reloads its own process and bumps a generation counter in the session
store; every other process sharing the store notices the new generation and reloads too.
A model that fails to load leaves its old version serving.
"""

from __future__ import annotations

import asyncio
import logging

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from service.config import Settings
from service.registry import Registry, ReloadReport, reload_all
from service.sessions import SessionStore, StoreUnavailable

log = logging.getLogger("nld.service")


async def reload_models(app: FastAPI) -> ReloadReport:
    """Reload the models directory in this process (one reload at a time)."""
    settings: Settings = app.state.settings
    async with app.state.reload_lock:
        reg: Registry = app.state.registry
        report = await run_in_threadpool(
            reload_all,
            reg,
            settings.models_dir,
            chains=settings.analysis_chains,
            steps=settings.analysis_steps,
        )
        pick_default(reg, settings)
    log.info("reload: %s", report)
    return report


def pick_default(reg: Registry, settings: Settings) -> None:
    names = sorted(reg.models)
    if settings.default_model is not None and settings.default_model not in reg.models:
        reg.failed.setdefault(settings.default_model, "the configured default is not loaded")
    reg.default = (
        settings.default_model
        if settings.default_model in reg.models
        else (names[0] if names else None)
    )


async def follow_reloads(app: FastAPI) -> None:
    """Reload when another process announced a reload through the shared store."""
    settings: Settings = app.state.settings
    store: SessionStore = app.state.sessions
    while True:
        await asyncio.sleep(settings.reload_poll_seconds)
        try:
            generation = await store.generation()
        except StoreUnavailable:
            continue
        if generation != app.state.generation:
            app.state.generation = generation
            await reload_models(app)
