"""Typed dependencies: settings, the model registry, sessions, the API key.

All are `async def`: FastAPI runs a sync dependency in a worker thread, a hop that cost
more than the whole labelling of one observation."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Annotated

import numpy as np
from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from service.config import Settings
from service.registry import Registry
from service.sessions import SessionStore

if TYPE_CHECKING:
    from service.loaded import LoadedModel


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_registry(request: Request) -> Registry:
    return request.app.state.registry


async def get_store(request: Request) -> SessionStore:
    return request.app.state.sessions


SettingsDep = Annotated[Settings, Depends(get_settings)]
RegistryDep = Annotated[Registry, Depends(get_registry)]
StoreDep = Annotated[SessionStore, Depends(get_store)]

KEY_HEADER = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    description="The service's key (NLD_API_KEY), when it has one.",
)
BEARER = HTTPBearer(
    auto_error=False,
    description="The same key as a bearer token (what Prometheus' `authorization` sends).",
)


def key_matches(settings: Settings, key: str | None) -> bool:
    expected = settings.api_key
    return expected is None or (
        key is not None
        and secrets.compare_digest(key.encode(), expected.get_secret_value().encode())
    )


KeyDep = Annotated[str | None, Security(KEY_HEADER)]
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)]


async def require_api_key(settings: SettingsDep, key: KeyDep, bearer: BearerDep) -> None:
    if key is None and bearer is not None:
        key = bearer.credentials
    if not key_matches(settings, key):
        raise HTTPException(
            401,
            "missing or wrong API key: send it as X-API-Key: KEY or Authorization: Bearer KEY",
            headers={"WWW-Authenticate": "ApiKey"},
        )


def not_ready(what: str, retry_after: int) -> HTTPException:
    return HTTPException(503, what, headers={"Retry-After": str(retry_after)})


def resolve_model(reg: Registry, name: str | None) -> LoadedModel:
    """The named model, or the default; 503 (with Retry-After) while it is loading, 404
    naming the models there are."""
    key = name or reg.default
    if key is not None and key in reg.models:
        return reg.models[key]
    if key is not None and key in reg.loading:
        status = reg.loading[key]
        raise not_ready(f"model {key!r} is loading: {status.describe()}", status.retry_after)
    if not reg.started:
        raise not_ready("the service is starting: its models are not listed yet", 1)
    known = ", ".join(sorted({*reg.models, *reg.loading})) or "none"
    what = f"no model {name!r}" if name else "no default model"
    raise HTTPException(404, f"{what} (models: {known})")


def resolve_energy_model(reg: Registry, name: str | None) -> LoadedModel:
    lm = resolve_model(reg, name)
    if lm.analysis is None:
        raise HTTPException(422, f"model {lm.name!r} is an NSDE baseline: it has no energy")
    return lm


AUTH = [Depends(require_api_key)]


def observations_array(rows: list[list[float]], cap: int) -> np.ndarray:
    """A request's observations as float32 [T, D]: 422 over the cap `max_observations` or
    for values float32 cannot hold."""
    if len(rows) > cap:
        raise HTTPException(
            422, f"{len(rows)} observations in one request: over the cap max_observations = {cap}"
        )
    with np.errstate(over="ignore"):
        x = np.asarray(rows, dtype=np.float32)
    if not np.isfinite(x).all():
        raise HTTPException(422, "observation values must fit in float32 (|x| < 3.4e38)")
    return x
