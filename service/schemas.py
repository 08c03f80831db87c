"""Request and response bodies. Floats in requests must be finite (JSON allows NaN and
Infinity; we refuse them with 422)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Finite = Annotated[float, Field(allow_inf_nan=False)]
Vector = Annotated[list[Finite], Field(min_length=1, max_length=4096)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Problem(BaseModel):
    """The body of every error response."""

    detail: Any


class StreamRequest(Strict):
    model: str | None = Field(None, description="model name (default: the service's default)")
    session_id: str | None = Field(None, description="continue this session; omit to open one")
    seq: int | None = Field(
        None, ge=0, description="chunk number 0, 1, 2, ... (optional; enables safe retries)"
    )
    end: bool = Field(False, description="close the session after this chunk")
    observations: list[Vector] = Field(
        min_length=1, description="observations [T][D], in stream order"
    )

    @model_validator(mode="after")
    def _rectangular(self) -> StreamRequest:
        dims = {len(o) for o in self.observations}
        if len(dims) > 1:
            raise ValueError(f"observations are ragged: rows of lengths {sorted(dims)}")
        return self


class StepResult(BaseModel):
    t: int = Field(description="time index of the observation in its stream")
    label: int = Field(description="basin (index into the model's minima)")
    z: list[float] = Field(description="latent position of the online readout")
    energy: float


class StreamResponse(BaseModel):
    session_id: str
    seq: int
    model: str
    version: str
    closed: bool
    results: list[StepResult]


class MinimumOut(BaseModel):
    position: list[float]
    energy: float
    hessian_eigenvalues: list[float]
    occupancy: dict[str, float | None] = Field(
        description="the basin's occupancy by each estimate (sampling, zeroth, second, "
        "quadrature); null where not computed"
    )


class MinimaResponse(BaseModel):
    model: str
    version: str
    beta: float
    minima: list[MinimumOut]
    warnings: list[str] = Field(
        description="caveats of the analysis (low barriers, a single well), and the state "
        "chain's split test when the training data support one more state than there are minima"
    )


OccupancyMethod = Literal["sampling", "zeroth", "second", "quadrature"]


class OccupancyResponse(BaseModel):
    model: str
    version: str
    method: OccupancyMethod
    description: str
    occupancy: list[float]
    standard_error: list[float] | None


class SaddleOut(BaseModel):
    between: tuple[int, int]
    position: list[float]
    energy: float
    hessian_eigenvalues: list[float]
    barriers: tuple[float, float] = Field(description="E_s - E_m from each end, in energy units")
    barrier_top_ratio: float = Field(
        description="the path integral of exp(beta (E - E_s)) over its Laplace value: near 1 "
        "where the Kramers rate through this saddle holds, larger at a sharp top"
    )


class TransitionsResponse(BaseModel):
    model: str
    version: str
    saddles: list[SaddleOut]
    clock: float = Field(
        description="the prior's clock (ModelConfig.clock): rates and dwell times are those of "
        "the landscape run this many times faster than in training, fitted to the data's "
        "dwell times when training ended (1: not fitted)"
    )
    rates: list[list[float | None]] = Field(description="generator, per model time unit")
    dwell_times: list[float | None] = Field(
        description="mean dwell per state, in observation steps, from the Kramers rates"
    )
    dwell_times_simulated: list[float | None] = Field(
        description="mean dwell per state, in observation steps, from simulating the prior "
        "(milestoning between the wells' cores; valid at any barrier height)"
    )
    transitions_simulated: list[list[int]] = Field(
        description="exits from state i to state j counted in the same simulation: nonzero "
        "where no saddle joins i and j means the prior passes a third well without settling"
    )
    warnings: list[str]


class BoxGrid(Strict):
    kind: Literal["box"] = "box"
    lo: Vector
    hi: Vector
    resolution: int = Field(64, ge=2, le=4096, description="points per axis")


class PlaneGrid(Strict):
    kind: Literal["plane"] = "plane"
    resolution: int = Field(64, ge=2, le=4096, description="points per axis")
    margin: float = Field(
        0.5, ge=0, le=10, description="extent beyond the minima, as a fraction of their spread"
    )


class EnergyRequest(Strict):
    model: str | None = None
    grid: BoxGrid | PlaneGrid = Field(discriminator="kind")


class EnergyResponse(BaseModel):
    model: str
    version: str
    axes: list[list[float]] = Field(description="grid coordinates along each axis")
    origin: list[float] | None = Field(None, description="plane grids: latent point at (0, 0)")
    basis: list[list[float]] | None = Field(None, description="plane grids: the two axes")
    energy: list[Any] = Field(description="E on the grid, nested by axis")


class SampleRequest(Strict):
    model: str | None = None
    n_paths: int = Field(16, ge=1)
    n_steps: int = Field(200, ge=1)
    dt: float = Field(
        0.1,
        gt=0,
        le=10,
        allow_inf_nan=False,
        description="model time between two rows, on the prior's clock (see /transitions)",
    )
    seed: int = Field(0, ge=0, lt=2**63)
    start: Vector | None = Field(None, description="start position (default: prior's p(z0))")


class SampleResponse(BaseModel):
    model: str
    version: str
    dt: float
    paths: list[list[list[float]]] = Field(description="[n_paths][n_steps + 1][d] positions")


class ModelSummary(BaseModel):
    name: str
    version: str
    dynamics: str
    obs_dim: int
    latent_dim: int
    n_minima: int | None
    streams: bool
    labels_from: str | None = Field(
        None,
        description="what stream labels are: 'state chain' (the most probable minimum under "
        "the causal filter of the hidden Markov chain over the minima), 'basin head' (the most "
        "probable basin, from a classifier of the context) or 'readout basins' (the basin of "
        "the readout position)",
    )


class ModelDetail(ModelSummary):
    config: dict[str, Any]
    meta: dict[str, Any]
    card: str | None


class ModelsResponse(BaseModel):
    default: str | None
    models: list[ModelSummary]
    failed: dict[str, str]


class ReloadOut(BaseModel):
    ok: bool
    loaded: dict[str, str] = Field(description="models (re)loaded: name -> new version")
    unchanged: list[str]
    removed: list[str]
    failed: dict[str, str] = Field(description="models that failed: the old version serves")
