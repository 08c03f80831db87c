"""The learned energy: minima, occupancies, transitions (analysed once per model version) and
the energy on grids."""

from __future__ import annotations

import math
from typing import Annotated

import numpy as np
from fastapi import APIRouter, HTTPException, Query, Response
from starlette.concurrency import run_in_threadpool

from service.deps import AUTH, RegistryDep, SettingsDep, resolve_energy_model
from service.schemas import (
    EnergyRequest,
    EnergyResponse,
    MinimaResponse,
    OccupancyMethod,
    OccupancyResponse,
    PlaneGrid,
    Problem,
    TransitionsResponse,
)

router = APIRouter(prefix="/landscape", tags=["landscape"], dependencies=AUTH)
ERRORS: dict[int | str, dict] = {
    401: {"model": Problem, "description": "missing or wrong API key"},
    404: {"model": Problem, "description": "no such model"},
    422: {"model": Problem, "description": "invalid request, or a model without an energy"},
    503: {"model": Problem, "description": "the model is loading (see Retry-After)"},
}
ModelQuery = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=128,
        description="the model's name; omitted: the service's default model",
        examples=["exp2-underdamped"],
    ),
]
MethodQuery = Annotated[
    OccupancyMethod,
    Query(
        description="the estimate: sampling, zeroth, second or quadrature", examples=["quadrature"]
    ),
]


@router.get(
    "/minima",
    responses=ERRORS,
    summary="The states: minima of the energy",
    description="The minima of the learned energy E, which are the hidden states (stream "
    "labels index this list), each with its position, energy, curvatures and its share of "
    "time by the four occupancy estimates; and the analysis' warnings, which say where its "
    "estimates are not to be trusted.",
)
async def minima(reg: RegistryDep, model: ModelQuery = None) -> MinimaResponse:
    return resolve_energy_model(reg, model).minima_response


@router.get(
    "/occupancy",
    responses=ERRORS,
    summary="How much time is spent in each state",
    description="The share of time in each minimum's basin under the stationary density "
    "exp(-beta E), by one estimate: (a) `sampling` (MALA samples, with standard errors), "
    "(b) `zeroth` (exp(-beta E) at the minima), (c) `second` (Laplace, with the curvatures; "
    "needs barriers above about 2/beta), (d) `quadrature` (exp(-beta E) integrated over each "
    "basin on a grid; latent dimension <= 3). (d), else (a), is the one to use.",
)
async def occupancy(
    reg: RegistryDep,
    model: ModelQuery = None,
    method: MethodQuery = "quadrature",
) -> OccupancyResponse:
    lm = resolve_energy_model(reg, model)
    out = lm.occupancy_response(method)
    if out is None:
        raise HTTPException(
            422,
            f"occupancy {method!r} is not computed for latent dimension "
            f"{lm.model.cfg.latent_dim} (use sampling, zeroth or second)",
        )
    return out


@router.get(
    "/transitions",
    responses=ERRORS,
    summary="Transitions between states",
    description="The saddles between pairs of minima with their barriers, the Kramers rate "
    "matrix and dwell times, and dwell times and exits counted by simulating the prior itself "
    "(which hold at any barrier height; prefer them where a warning says the barriers are "
    "low or the tops sharp). Dwell times are in observation steps.",
)
async def transitions(reg: RegistryDep, model: ModelQuery = None) -> TransitionsResponse:
    return resolve_energy_model(reg, model).transitions_response


@router.post(
    "/energy",
    responses=ERRORS,
    summary="The energy on a grid",
    description="E (energy units) on an axis-aligned box of the latent space (`kind` box, the "
    "default: `lo`, `hi` in latent units) or on the plane through the minima (`kind` plane; "
    "latent dimension >= 2), `resolution` points per axis. A grid holds at most "
    "NLD_MAX_GRID_POINTS points.",
)
async def energy(body: EnergyRequest, reg: RegistryDep, settings: SettingsDep) -> EnergyResponse:
    lm = resolve_energy_model(reg, body.model)
    d = lm.model.cfg.latent_dim
    g = body.grid
    if isinstance(g, PlaneGrid):
        if d == 1:
            raise HTTPException(422, "a plane grid needs latent dimension >= 2: use a box")
        if g.offset and d != 3:
            raise HTTPException(
                422, f"a plane's offset needs latent dimension 3, not {d}: leave it at 0"
            )
        n_axes = 2
    else:
        if len(g.lo) != d or len(g.hi) != d:
            raise HTTPException(
                422, f"lo and hi must have the latent dimension {d}, not {len(g.lo)}, {len(g.hi)}"
            )
        if any(a >= b for a, b in zip(g.lo, g.hi, strict=True)):
            raise HTTPException(422, "every lo must be below its hi")
        n_axes = d
    # Logarithms first: resolution ** n_axes can be a number of thousands of digits.
    cap = settings.max_grid_points
    if n_axes * math.log(g.resolution) > math.log(cap) + 1e-9 or g.resolution**n_axes > cap:
        raise HTTPException(
            422,
            f"a grid of {g.resolution} points per axis on {n_axes} axes is over the cap of "
            f"{settings.max_grid_points} points (max_grid_points): lower the resolution",
        )
    origin: list[float] | None = None
    basis: list[list[float]] | None = None
    if isinstance(g, PlaneGrid):
        grid, plane = await run_in_threadpool(lm.energy_plane, g.resolution, g.margin, g.offset)
        origin, basis = plane.origin.tolist(), plane.basis.tolist()
    else:
        grid = await run_in_threadpool(lm.energy_box, g.lo, g.hi, g.resolution)
    if not np.isfinite(grid.energy).all():
        raise HTTPException(422, "the energy is not finite on this grid: choose a smaller box")
    basins = None
    if body.basins:
        assert lm.analysis is not None and lm.analysis.index is not None
        basins = await run_in_threadpool(lm.analysis.index.assign, grid.points, exact=False)
    return EnergyResponse(
        model=lm.name,
        version=lm.version,
        axes=[ax.tolist() for ax in grid.axes],
        origin=origin,
        basis=basis,
        energy=grid.energy.tolist(),
        basins=None if basins is None else basins.tolist(),
    )


@router.get(
    "/image",
    responses={**ERRORS, 200: {"content": {"image/png": {}}, "description": "a PNG"}},
    response_class=Response,
    summary="The landscape as an image",
    description="A PNG of the learned energy: E on the plane through the minima (along the "
    "latent axis for latent dimension 1), with the minima numbered as in `/landscape/minima`, "
    "the saddles (x) and the minimum energy paths (white). Rendered once per model version.",
)
async def image(reg: RegistryDep, model: ModelQuery = None) -> Response:
    lm = resolve_energy_model(reg, model)
    png = await run_in_threadpool(lambda: lm.landscape_png)
    return Response(png, media_type="image/png")
