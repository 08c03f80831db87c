"""Typed dependencies: settings, the model registry, sessions, the API key.

All are `async def`: FastAPI runs a sync dependency in a worker thread, a hop that cost
more than the whole labelling of one observation."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader

from service.config import Settings
from service.registry import LoadedModel, Registry
from service.sessions import SessionStore


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_registry(request: Request) -> Registry:
    reg: Registry = request.app.state.registry
    if not reg.ready:
        raise HTTPException(503, "models are still loading")
    return reg


async def get_store(request: Request) -> SessionStore:
    return request.app.state.sessions


SettingsDep = Annotated[Settings, Depends(get_settings)]
RegistryDep = Annotated[Registry, Depends(get_registry)]
StoreDep = Annotated[SessionStore, Depends(get_store)]

_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)


async def require_api_key(settings: SettingsDep, key: str | None = Security(_key_header)) -> None:
    expected = settings.api_key
    if expected is None:
        return
    if key is None or not secrets.compare_digest(
        key.encode(), expected.get_secret_value().encode()
    ):
        raise HTTPException(
            401, "missing or wrong X-API-Key", headers={"WWW-Authenticate": "ApiKey"}
        )


def resolve_model(reg: Registry, name: str | None) -> LoadedModel:
    """The named model, or the default; 404 naming the models there are."""
    key = name or reg.default
    if key is None or key not in reg.models:
        known = ", ".join(sorted(reg.models)) or "none"
        what = f"no model {name!r}" if name else "no default model"
        raise HTTPException(404, f"{what} (models: {known})")
    return reg.models[key]


def resolve_energy_model(reg: Registry, name: str | None) -> LoadedModel:
    lm = resolve_model(reg, name)
    if lm.analysis is None:
        raise HTTPException(422, f"model {lm.name!r} is an NSDE baseline: it has no energy")
    return lm


AUTH = [Depends(require_api_key)]
