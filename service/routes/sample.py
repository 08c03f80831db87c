"""Trajectories of a model's prior SDE."""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter, HTTPException
from starlette.concurrency import run_in_threadpool

from nld.simulate import simulate_prior
from service.deps import AUTH, RegistryDep, SettingsDep, resolve_model
from service.schemas import Problem, SampleRequest, SampleResponse

router = APIRouter(tags=["sample"], dependencies=AUTH)


@router.post(
    "/sample",
    responses={
        401: {"model": Problem, "description": "missing or wrong API key"},
        404: {"model": Problem, "description": "no such model"},
        422: {"model": Problem, "description": "invalid request, or over a cap"},
        503: {"model": Problem, "description": "models still loading"},
    },
)
async def sample(body: SampleRequest, reg: RegistryDep, settings: SettingsDep) -> SampleResponse:
    lm = resolve_model(reg, body.model)
    d = lm.model.cfg.latent_dim
    for value, cap, name in (
        (body.n_paths, settings.max_sample_paths, "max_sample_paths"),
        (body.n_steps, settings.max_sample_steps, "max_sample_steps"),
        (body.n_paths * (body.n_steps + 1) * d, settings.max_sample_values, "max_sample_values"),
    ):
        if value > cap:
            raise HTTPException(422, f"{value} is over the cap {name} = {cap}")
    if body.start is not None and len(body.start) != d:
        raise HTTPException(422, f"start must have the latent dimension {d}, not {len(body.start)}")
    start = None if body.start is None else np.asarray(body.start)
    paths = await run_in_threadpool(
        simulate_prior, lm.model, body.n_paths, body.n_steps, body.dt, seed=body.seed, start=start
    )
    if not np.isfinite(paths).all():
        raise HTTPException(
            422, "the prior diverged (non-finite positions): use a smaller dt or another start"
        )
    return SampleResponse(model=lm.name, version=lm.version, dt=body.dt, paths=paths.tolist())
