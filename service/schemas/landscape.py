"""The landscape: minima, occupancies, saddles and rates, and the energy on grids."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Discriminator, Field, Tag

from service.schemas.common import (
    MODEL_OUT,
    VERSION,
    ModelName,
    Strict,
    Vector,
    model_field,
)

OCCUPANCY = Field(
    description="the share of time spent in each minimum's basin by each estimate: `sampling` "
    "(a), `zeroth` (b), `second` (c), `quadrature` (d) (see `GET /landscape/occupancy`); "
    "null where not computed",
    examples=[{"sampling": 0.446, "zeroth": 0.449, "second": 0.464, "quadrature": 0.45}],
)


class MinimumOut(BaseModel):
    position: list[float] = Field(
        description="the minimum, in latent units", examples=[[0.84, 0.31]]
    )
    energy: float = Field(description="E there, in energy units", examples=[34.58])
    hessian_eigenvalues: list[float] = Field(
        description="curvatures of E there, ascending (energy units per latent unit squared); "
        "all positive at a minimum",
        examples=[[5.2, 14.9]],
    )
    occupancy: dict[str, float | None] = OCCUPANCY
    regime: int | None = Field(
        None,
        description="its regime: the metastable group of minima it belongs to by the kinetics "
        "of the model's chain over them (null for a model without one); where every minimum "
        "is its own regime, its index",
        examples=[0],
    )


WARNINGS = Field(
    description="caveats of the analysis, in words: low barriers (where the harmonic "
    "estimates and the Kramers rates fail), a single well, barrier tops that are not "
    "quadratic, and the state chain's split test when the training data support one more "
    "state than there are minima",
    examples=[["2 barrier(s) below 2.0/beta: ..."]],
)


class MinimaResponse(BaseModel):
    model: str = MODEL_OUT
    version: str = VERSION
    beta: float = Field(
        description="the inverse temperature: exp(-beta E) is the stationary density",
        examples=[1.36],
    )
    minima: list[MinimumOut] = Field(description="the minima of E: the hidden states, by index")
    warnings: list[str] = WARNINGS


OccupancyMethod = Literal["sampling", "zeroth", "second", "quadrature"]


class OccupancyResponse(BaseModel):
    model: str = MODEL_OUT
    version: str = VERSION
    method: OccupancyMethod = Field(description="the estimate", examples=["quadrature"])
    description: str = Field(
        description="how it is computed",
        examples=["(d) grid quadrature of exp(-beta E) over each basin (latent dim <= 3)"],
    )
    occupancy: list[float] = Field(
        description="the share of time in each minimum's basin (sums to 1), by minimum index",
        examples=[[0.45, 0.344, 0.206]],
    )
    standard_error: list[float] | None = Field(
        description="its standard error by minimum (the sampling estimate only; else null)",
        examples=[[0.004, 0.004, 0.003]],
    )


class SaddleOut(BaseModel):
    between: tuple[int, int] = Field(
        description="the two minima (indices) it joins", examples=[[0, 2]]
    )
    position: list[float] = Field(
        description="the saddle point (latent units)", examples=[[0.1, 0.0]]
    )
    energy: float = Field(description="E there (energy units)", examples=[35.9])
    hessian_eigenvalues: list[float] = Field(
        description="curvatures of E there, ascending: exactly one is negative",
        examples=[[-3.1, 11.0]],
    )
    barriers: tuple[float, float] = Field(
        description="E_saddle - E_minimum seen from each end (energy units; multiply by beta "
        "for thermal units)",
        examples=[[1.32, 0.76]],
    )
    barrier_top_ratio: float = Field(
        description="the path integral of exp(beta (E - E_s)) over its Laplace value: near 1 "
        "where the Kramers rate through this saddle holds, larger at a sharp top",
        examples=[1.17],
    )
    path: list[list[float]] = Field(
        description="the minimum energy path from the first minimum through the saddle to the "
        "second (latent units, evenly spaced along its length; the string method)",
        examples=[[[0.75, -0.12], [0.28, 0.3], [-0.12, 0.74]]],
    )


class TransitionsResponse(BaseModel):
    model: str = MODEL_OUT
    version: str = VERSION
    saddles: list[SaddleOut] = Field(description="index-1 saddles between pairs of minima")
    clock: float = Field(
        description="the prior's clock (ModelConfig.clock): rates and dwell times are those of "
        "the landscape run this many times faster than in training, fitted to the data's "
        "dwell times when training ended (1: not fitted)",
        examples=[2.52],
    )
    rates: list[list[float | None]] = Field(
        description="the Kramers generator K[i][j], i != j: rate from minimum i to j per unit "
        "of model time (rows sum to 0)",
        examples=[[[-0.41, 0.2, 0.21], [0.3, -0.6, 0.3], [0.2, 0.3, -0.5]]],
    )
    dwell_times: list[float | None] = Field(
        description="mean dwell per state, in observation steps, from the Kramers rates "
        "(null: no exit)",
        examples=[[25.2, 11.8, 19.4]],
    )
    dwell_times_simulated: list[float | None] = Field(
        description="mean dwell per state, in observation steps, from simulating the prior "
        "(milestoning between the wells' cores; valid at any barrier height)",
        examples=[[23.5, 17.9, 20.3]],
    )
    dwell_times_chain: list[float | None] | None = Field(
        None,
        description="mean dwell per state, in observation steps, of the model's hidden Markov "
        "chain over its minima fitted to the training data (the state chain, or the basin "
        "head's chain); null without one",
        examples=[[24.6, 20.2, 17.1]],
    )
    transitions_simulated: list[list[int]] = Field(
        description="exits from state i to state j counted in the same simulation: nonzero "
        "where no saddle joins i and j means the prior passes a third well without settling",
        examples=[[[0, 120, 95], [110, 0, 80], [100, 75, 0]]],
    )
    warnings: list[str] = WARNINGS


RESOLUTION = Field(64, ge=2, le=4096, description="grid points per axis", examples=[64])


class BoxGrid(Strict):
    kind: Literal["box"] = Field(
        "box",
        description="an axis-aligned box of the latent space (the default kind)",
        examples=["box"],
    )
    lo: Vector = Field(
        description="the box's lower corner (latent units, one per latent axis)",
        examples=[[-2.0, -2.0]],
    )
    hi: Vector = Field(
        description="its upper corner, above `lo` on every axis", examples=[[2.0, 2.0]]
    )
    resolution: int = RESOLUTION


class PlaneGrid(Strict):
    kind: Literal["plane"] = Field(
        description="the plane through the minima (their best plane when there are more than "
        "three), centred on them",
        examples=["plane"],
    )
    resolution: int = RESOLUTION
    margin: float = Field(
        0.5,
        ge=0,
        le=10,
        description="extent beyond the minima, as a fraction of their spread",
        examples=[0.5],
    )
    offset: float = Field(
        0.0,
        ge=-1e3,
        le=1e3,
        description="latent dimension 3: the plane moved this far (latent units) along its "
        "normal, a slice of the landscape parallel to the plane through the minima",
        examples=[0.0],
    )


def _grid_kind(value: Any) -> str:
    kind = value.get("kind", "box") if isinstance(value, dict) else getattr(value, "kind", None)
    return kind if isinstance(kind, str) else ""


Grid = Annotated[
    Annotated[BoxGrid, Tag("box")] | Annotated[PlaneGrid, Tag("plane")],
    Discriminator(
        _grid_kind,
        custom_error_type="grid_kind",
        custom_error_message="kind must be 'box' or 'plane'",
    ),
]


class EnergyRequest(Strict):
    model: ModelName | None = model_field()
    grid: Grid = Field(
        description="where to evaluate E: a box (`kind` box, the default) or the plane through "
        "the minima (`kind` plane)",
        examples=[{"kind": "box", "lo": [-2, -2], "hi": [2, 2], "resolution": 64}],
    )
    basins: bool = Field(
        False,
        description="also give the basin (the state, an index of the minima) of every grid point",
        examples=[False],
    )


class EnergyResponse(BaseModel):
    model: str = MODEL_OUT
    version: str = VERSION
    axes: list[list[float]] = Field(
        description="grid coordinates along each axis: latent units for a box, plane "
        "coordinates (latent units along `basis`) for a plane",
        examples=[[[-2.0, 0.0, 2.0], [-2.0, 0.0, 2.0]]],
    )
    origin: list[float] | None = Field(
        None,
        description="plane grids: the latent point at plane coordinates (0, 0)",
        examples=[[0.09, 0.44]],
    )
    basis: list[list[float]] | None = Field(
        None,
        description="plane grids: the two unit vectors of the plane in latent space",
        examples=[[[1.0, 0.0], [0.0, 1.0]]],
    )
    energy: list[Any] = Field(
        description="E on the grid (energy units), nested by axis: energy[i][j] at axes[0][i], "
        "axes[1][j]",
        examples=[[[40.1, 37.2, 41.0], [36.5, 35.9, 38.2], [41.3, 36.8, 42.2]]],
    )
    basins: list[Any] | None = Field(
        None,
        description="with `basins` asked for: the basin of every grid point (the state it "
        "belongs to), nested as `energy`",
        examples=[[[0, 0, 1], [0, 0, 1], [2, 2, 1]]],
    )
