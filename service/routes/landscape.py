"""The learned energy: minima, occupancies, transitions (computed once per model version at
load) and the energy on grids."""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter, HTTPException

from nld.analysis.grid import box_grid, plane_grid, plane_through
from nld.chain_split import split_warnings, stored_split
from nld.landscape import finite_or_none
from service.deps import AUTH, RegistryDep, SettingsDep, resolve_energy_model
from service.schemas import (
    EnergyRequest,
    EnergyResponse,
    MinimaResponse,
    MinimumOut,
    OccupancyMethod,
    OccupancyResponse,
    PlaneGrid,
    Problem,
    SaddleOut,
    TransitionsResponse,
)

router = APIRouter(prefix="/landscape", tags=["landscape"], dependencies=AUTH)
ERRORS: dict[int | str, dict] = {
    401: {"model": Problem, "description": "missing or wrong API key"},
    404: {"model": Problem, "description": "no such model"},
    422: {"model": Problem, "description": "invalid request, or a model without an energy"},
    503: {"model": Problem, "description": "models still loading"},
}

DESCRIPTIONS = {
    "sampling": "(a) MALA samples of exp(-beta E), each assigned to its basin",
    "zeroth": "(b) exp(-beta E(x_i)) at the minima, normalised",
    "second": "(c) Laplace: exp(-beta E(x_i)) det(beta H_i)^(-1/2), normalised",
    "quadrature": "(d) grid quadrature of exp(-beta E) over each basin (latent dim <= 3)",
}


@router.get("/minima", responses=ERRORS)
async def minima(reg: RegistryDep, model: str | None = None) -> MinimaResponse:
    lm = resolve_energy_model(reg, model)
    a = lm.analysis
    assert a is not None
    return MinimaResponse(
        model=lm.name,
        version=lm.version,
        beta=a.beta,
        minima=[
            MinimumOut(
                position=m.position.tolist(),
                energy=m.energy,
                hessian_eigenvalues=m.hessian_eigenvalues.tolist(),
                occupancy={k: None if v is None else v[i] for k, v in a.occupancy.items()},
            )
            for i, m in enumerate(a.minima)
        ],
        warnings=[*a.warnings, *split_warnings(stored_split(lm.meta))],
    )


@router.get("/occupancy", responses=ERRORS)
async def occupancy(
    reg: RegistryDep, model: str | None = None, method: OccupancyMethod = "quadrature"
) -> OccupancyResponse:
    lm = resolve_energy_model(reg, model)
    a = lm.analysis
    assert a is not None
    values = a.occupancy[method]
    if values is None:
        raise HTTPException(
            422,
            f"occupancy {method!r} is not computed for latent dimension "
            f"{lm.model.cfg.latent_dim} (use sampling, zeroth or second)",
        )
    return OccupancyResponse(
        model=lm.name,
        version=lm.version,
        method=method,
        description=DESCRIPTIONS[method],
        occupancy=values,
        standard_error=a.occupancy_error.get(method),
    )


@router.get("/transitions", responses=ERRORS)
async def transitions(reg: RegistryDep, model: str | None = None) -> TransitionsResponse:
    lm = resolve_energy_model(reg, model)
    a = lm.analysis
    assert a is not None
    return TransitionsResponse(
        model=lm.name,
        version=lm.version,
        saddles=[
            SaddleOut(
                between=s.pair,
                position=s.position.tolist(),
                energy=s.energy,
                hessian_eigenvalues=s.hessian_eigenvalues.tolist(),
                barriers=s.barrier(a.minima),
                barrier_top_ratio=top,
            )
            for s, top in zip(a.saddles, a.barrier_tops, strict=True)
        ],
        clock=a.clock,
        rates=[finite_or_none(row) for row in a.rates],
        dwell_times=finite_or_none(a.dwell_steps),
        dwell_times_simulated=finite_or_none(a.dwell_simulated),
        transitions_simulated=a.transitions_simulated.tolist(),
        warnings=a.warnings,
    )


@router.post("/energy", responses=ERRORS)
def energy(body: EnergyRequest, reg: RegistryDep, settings: SettingsDep) -> EnergyResponse:
    lm = resolve_energy_model(reg, body.model)
    a = lm.analysis
    assert a is not None and a.index is not None
    d = lm.model.cfg.latent_dim
    g = body.grid
    n_axes = 2 if isinstance(g, PlaneGrid) else len(g.lo)
    points = g.resolution**n_axes
    if points > settings.max_grid_points:
        raise HTTPException(
            422,
            f"grid of {points} points is over the cap of {settings.max_grid_points} "
            "(max_grid_points): lower the resolution",
        )
    fn = a.index.energy
    if isinstance(g, PlaneGrid):
        centres = np.stack([m.position for m in a.minima])
        if d == 1:
            raise HTTPException(422, "a plane grid needs latent dimension >= 2: use a box")
        plane = plane_through(centres)
        uv = plane.project(centres)
        lo, hi = uv.min(0), uv.max(0)
        pad = (g.margin * np.maximum(hi - lo, 1e-3).max()) + (0 if len(centres) > 1 else 1.0)
        grid = plane_grid(
            fn, plane, (lo[0] - pad, hi[0] + pad, lo[1] - pad, hi[1] + pad), g.resolution
        )
        origin, basis = plane.origin.tolist(), plane.basis.tolist()
    else:
        if len(g.lo) != d or len(g.hi) != d:
            raise HTTPException(422, f"lo and hi must have the latent dimension {d}")
        if any(a_ >= b_ for a_, b_ in zip(g.lo, g.hi, strict=True)):
            raise HTTPException(422, "every lo must be below its hi")
        grid = box_grid(fn, np.array(g.lo), np.array(g.hi), g.resolution)
        origin = basis = None
    if not np.isfinite(grid.energy).all():
        raise HTTPException(422, "the energy is not finite on this grid: choose a smaller box")
    return EnergyResponse(
        model=lm.name,
        version=lm.version,
        axes=[ax.tolist() for ax in grid.axes],
        origin=origin,
        basis=basis,
        energy=grid.energy.tolist(),
    )
